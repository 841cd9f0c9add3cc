"""``python -m autoresearch.knowledge``: search, literature and export from the shell."""

import sys

from autoresearch.knowledge.cli import main

sys.exit(main())
