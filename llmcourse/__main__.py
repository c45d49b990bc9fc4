"""Command line: ``python -m llmcourse doctor`` and ``python -m llmcourse docs``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmcourse", description="The llmcourse command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check that this machine is ready for the course")
    sub.add_parser("docs", help="write GLOSSARY.md and SYLLABUS.md from the notebooks")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from llmcourse.doctor import main as doctor

        return doctor()
    if args.command == "docs":
        from llmcourse.course import write_docs

        for path in write_docs():
            print(f"wrote {path}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
