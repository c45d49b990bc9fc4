"""Command line: ``python -m llmcourse doctor``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmcourse", description="The llmcourse command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check that this machine is ready for the course")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from llmcourse.doctor import main as doctor

        return doctor()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
