"""`python -m pngan ...`: see pngan.cli."""

import sys

from pngan.cli import main

sys.exit(main())
