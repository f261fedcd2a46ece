"""``python -m retrosim``: the command line (same as the ``retrosim`` script)."""

import sys

from retrosim.cli import main

sys.exit(main())
