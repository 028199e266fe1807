"""`python -m hfcifar.train` / `accelerate launch -m hfcifar.train`: the same job as `hfcifar train`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
