"""``python -m autoresearch.store``: the command line moved to ``python -m autoresearch.knowledge``.

Searching needs embeddings and the literature, which live in ``knowledge`` (a room above the
store); the store itself stays free of them, so this only points to the new command.
"""

import sys

args = " ".join(sys.argv[1:]) or "--help"
print(f"error: the store's command line moved; run: python -m autoresearch.knowledge {args}", file=sys.stderr)
sys.exit(2)
