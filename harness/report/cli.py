"""``stormproof report``: re-render run reports, or write the index of runs.

::

    stormproof report RUN_DIR...               # report.html + junit.xml from result.json + history.jsonl
    stormproof report --index OUT DIR...       # OUT (a file, or a directory for index.html) over the runs in DIR...

Each DIR of ``--index`` is a run directory or a directory holding run
directories (such as ``runs/``). Exit codes follow the CLI: 0 done,
2 an error (a missing or malformed result.json, no run found). A run's own
verdict does not change the exit code here: rendering a failed run
successfully is a success.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from stormproof.harness.report.index import write_index
from stormproof.harness.report.render import render_run
from stormproof.harness.report.result import ResultError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_ERROR = 0, 2


class _Parser(argparse.ArgumentParser):
    """A usage error is one line, exit 2, like every ``stormproof`` error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(prog: str = "stormproof report") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Render run reports (report.html, junit.xml) from run directories, or an index of runs.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="run directories (with --index: run directories or directories of them)")
    parser.add_argument("--index", metavar="OUT",
                        help="write the index of runs to OUT (a directory gets OUT/index.html) instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stormproof report`` with ``argv`` (without the program name); returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.index is not None:
        out, problems = write_index(args.index, args.dirs)
        for problem in problems:
            print(f"stormproof report: warning: {problem}", file=sys.stderr)
        print(out)
        return EXIT_ERROR if problems else EXIT_OK
    status = EXIT_OK
    for run_dir in args.dirs:
        try:
            rendered = render_run(run_dir)
        except ResultError as exc:
            print(f"stormproof report: error: {exc}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        if rendered.history_problem:
            print(f"stormproof report: warning: {run_dir}: rendered without history: {rendered.history_problem}",
                  file=sys.stderr)
        print(rendered.report)
        print(rendered.junit)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
