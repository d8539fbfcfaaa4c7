"""``python -m meshfield ...``: the same command line as ``meshfield ...``."""

import sys

from .cli import main

sys.exit(main())
