"""What every `hfcifar` command shares: exit codes, the usage error, value parsers, the failure report."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from fractions import Fraction

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _number(text: str) -> float:
    """Parse `0.03`, `8/255` and the like."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from error


def _metric_option(text: str) -> tuple[str, object]:
    """Parse `KEY=VALUE` (VALUE a number such as `8/255` or `0.5`, `true`/`false`, or text)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return key, value
    return key, int(number) if number.denominator == 1 and "." not in value else float(number)


class UsageError(Exception):
    """A command-line argument error found before any work starts: printed without a traceback, exit status 2."""


def _positive_minutes(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the budget must be a positive number of minutes, not {text!r}")
    return value


def _report(command: str, error: BaseException) -> None:
    """Print a failure's cause on one line; the traceback too when HFCIFAR_DEBUG is set (to anything but 0)."""
    if os.environ.get("HFCIFAR_DEBUG", "0") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    print(f"hfcifar {command}: error: {error}", file=sys.stderr)
