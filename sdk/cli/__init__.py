"""The ``vlmscope`` command line. Each subcommand lives in its own module of this package and
registers itself through a ``register(subparsers)`` function listed in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

COMMANDS = ("vlmscope.cli.sql", "vlmscope.cli.demo", "vlmscope.cli.eval",
            "vlmscope.cli.collect", "vlmscope.cli.interchange", "vlmscope.cli.diff",
            "vlmscope.cli.report")
"""Modules that each add one or more subcommands."""


class CommandError(Exception):
    """A user-facing error: printed as ``error: ...`` and exit status 2, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from vlmscope import __version__

    parser = argparse.ArgumentParser(
        prog="vlmscope",
        description="Trace, query and score vision-language pipelines stored in DuckDB.",
    )
    parser.add_argument("--version", action="version", version=f"vlmscope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from vlmscope.collectors.store import StoreError, is_damage_error

    try:
        return int(args.handler(args) or 0)
    except (CommandError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Whoever read the output stopped (`vlmscope sql ... | head`): stop quietly, as Unix
        # tools do; stdout goes to /dev/null so that the exit's flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as error:
        # A store damaged past what opening it shows fails a query midway: one line, no
        # traceback; anything else is a bug and keeps its traceback.
        if not is_damage_error(error):
            raise
        db = getattr(args, "db", None)
        print(f"error: the store {db or ''} is damaged: {str(error).splitlines()[0]}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
