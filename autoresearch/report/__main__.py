"""``python -m autoresearch.report CAMPAIGN_DIR [--db PATH]``: (re)write a campaign's report on demand."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autoresearch.report.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoresearch.report", description=__doc__)
    parser.add_argument("campaign_dir", type=Path)
    parser.add_argument("--db", default=os.environ.get("AUTORESEARCH_DB", "outputs/knowledge.sqlite"))
    args = parser.parse_args(argv)
    from autoresearch.store import KnowledgeStore

    if not Path(args.db).is_file():
        print(f"error: {args.db}: no knowledge store there (pass --db)", file=sys.stderr)
        return 2
    store = KnowledgeStore(Path(args.db))
    try:
        path = write_report(args.campaign_dir, store, args.campaign_dir.resolve().name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
