"""Command line for what campaigns know: search past experiments and the literature, add
literature. (A campaign's report and ``results.tsv``: ``python -m autoresearch.report DIR``.)

    python -m autoresearch.knowledge search "rope base" [--db PATH] [--k 5] [--literature]
    python -m autoresearch.knowledge literature add FILE [--db PATH]
    python -m autoresearch.knowledge literature list [--db PATH]

The store defaults to ``outputs/knowledge.sqlite`` (``$AUTORESEARCH_DB`` overrides): one file for
every campaign, so a search covers them all. Everything shown comes from campaigns and files, so
it is handed to rich as ``Text`` (never parsed as markup) with control characters made visible.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autoresearch.knowledge.embedders import EmbedderUnavailable, HashingEmbedder, make_embedder
from autoresearch.knowledge.literature import Literature, LiteratureError
from autoresearch.knowledge.memory import Memory, format_overrides
from autoresearch.safety import install_log_safety, rich_text
from autoresearch.store import DB_ENV, KnowledgeStore, StoreError, default_db_path

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autoresearch.knowledge", description="Search the knowledge store and its literature.")
    db_help = f"the store (default: ${DB_ENV} or outputs/knowledge.sqlite)"
    sub = parser.add_subparsers(dest="command", required=True)

    search = sub.add_parser("search", help="past experiments (and literature) nearest a text")
    search.add_argument("query")
    search.add_argument("--db", type=Path, default=None, help=db_help)
    search.add_argument("--k", type=int, default=5, help="how many results (default 5)")
    search.add_argument("--campaign", default=None, help="only this campaign's trials")
    search.add_argument("--literature", action="store_true", help="also search the known results")
    search.add_argument(
        "--embedder", default="auto", choices=("auto", "minilm", "hashing"), help="sentence embedder (default: MiniLM when installed)"
    )

    lit = sub.add_parser("literature", help="the literature of known results")
    lit_sub = lit.add_subparsers(dest="literature_command", required=True)
    add = lit_sub.add_parser("add", help="add the records of a JSONL file")
    add.add_argument("file", type=Path)
    add.add_argument("--db", type=Path, default=None, help=db_help)
    listing = lit_sub.add_parser("list", help="list every record (shipped and added)")
    listing.add_argument("--db", type=Path, default=None, help=db_help)

    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    errors = Console(stderr=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_safety()
    try:
        if args.command == "search":
            return _search(args, console)
        return _literature(args, console)
    except (StoreError, LiteratureError, EmbedderUnavailable) as err:
        errors.print(Text("error: ", style="red") + rich_text(err, keep_newlines=True), highlight=False, soft_wrap=True)
        return 2


def _existing_store(db: Optional[Path]) -> KnowledgeStore:
    path = db or default_db_path()
    if not path.is_file():
        raise StoreError(f"no knowledge store at {path}: run a campaign first, or pass --db / set ${DB_ENV}")
    return KnowledgeStore(path)


def _search(args: argparse.Namespace, console: Console) -> int:
    with _existing_store(args.db) as store:
        embedder = make_embedder(args.embedder)
        campaign_id = None
        if args.campaign:
            row = store.campaign(args.campaign)
            if row is None:
                raise StoreError(f"{store.path} has no campaign {args.campaign!r} (known: {[c.name for c in store.campaigns()]})")
            campaign_id = row.id
        neighbours = Memory(store, embedder).nearest(args.query, k=args.k, campaign_id=campaign_id)
        if neighbours:
            table = Table(title=rich_text(f"experiments nearest {args.query!r} ({embedder.name})"))
            table.add_column("trial", no_wrap=True)
            table.add_column("campaign")
            table.add_column("status")
            table.add_column("val_bpb", justify="right", no_wrap=True)
            table.add_column("sim", justify="right", no_wrap=True)
            table.add_column("overrides", overflow="fold")
            # Paths and links are what people copy: folded, never elided, when the terminal is narrow.
            table.add_column("run_dir", overflow="fold")
            for n in neighbours:
                status = n.status + (f" ({n.decision})" if n.decision else "")
                bpb = f"{n.val_bpb:.4f}" if n.val_bpb is not None else "-"
                cells = (n.label, n.campaign, status, bpb, f"{n.score:.2f}", format_overrides(n.overrides), n.run_dir)
                table.add_row(*(rich_text(c) for c in cells))
            console.print(table)
        else:
            console.print(rich_text(f"no finished experiments in {store.path} yet"))
        if args.literature:
            hits = Literature(store, embedder).search(args.query, k=args.k)
            table = Table(title=rich_text(f"known results nearest {args.query!r}"))
            table.add_column("sim", justify="right", no_wrap=True)
            table.add_column("effect", no_wrap=True)
            table.add_column("result")
            table.add_column("url", overflow="fold")
            for entry, score in hits:
                result = rich_text(f"{entry.title} ({entry.authors or 'n.a.'}, {entry.year})", style="bold")
                result.append("\n")
                result.append_text(rich_text(entry.claimed_effect))
                table.add_row(f"{score:.2f}", rich_text(entry.effect_direction), result, rich_text(entry.url))
            console.print(table)
    return 0


def _literature(args: argparse.Namespace, console: Console) -> int:
    path = args.db or default_db_path()
    with KnowledgeStore(path) as store:
        # Adding and listing need no vectors; entries are embedded lazily on the first search.
        literature = Literature(store, HashingEmbedder())
        if args.literature_command == "add":
            count = literature.add_file(args.file)
            console.print(rich_text(f"added {count} literature record(s) from {args.file} to {store.path}"))
            return 0
        table = Table(title=Text(f"literature ({len(literature.entries)} records)"))
        for name in ("id", "effect", "year", "title", "settings", "source"):
            table.add_column(name)
        for e in literature.entries:
            settings = ", ".join(f"{k}={v}" for k, v in e.settings.items())
            table.add_row(*(rich_text(c) for c in (e.id, e.effect_direction, str(e.year), e.title, settings, e.source)))
        console.print(table)
    return 0
