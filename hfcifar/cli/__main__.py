"""`python -m hfcifar.cli …`: the `hfcifar` command."""

import sys

from . import main

sys.exit(main())
