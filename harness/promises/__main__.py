"""``python -m stormproof.harness.promises [--markdown | --check FILE]``: print the table, or check a copy of it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stormproof.harness.promises import PROMISES
from stormproof.harness.promises.markdown import render_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stormproof.harness.promises", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--markdown", action="store_true", help="print docs/PROMISES.md")
    mode.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the generated markdown")
    args = parser.parse_args(argv)
    if args.check:
        if Path(args.check).read_text(encoding="utf-8") != render_markdown():
            print(f"{args.check} is stale: run python -m stormproof.harness.promises --markdown > {args.check}",
                  file=sys.stderr)
            return 1
        return 0
    if args.markdown:
        sys.stdout.write(render_markdown())
        return 0
    for promise in PROMISES:
        print(f"{promise.id:60} {promise.invariant:28} {','.join(promise.weaken) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
