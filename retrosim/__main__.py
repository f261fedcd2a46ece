"""``python -m retrosim``: the command line (same as the ``retrosim`` script)."""

import sys

from .cli import main

sys.exit(main())
