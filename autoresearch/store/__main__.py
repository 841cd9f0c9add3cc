"""``python -m autoresearch.store``: ask the knowledge store from the shell."""

import sys

from autoresearch.store.cli import main

sys.exit(main())
