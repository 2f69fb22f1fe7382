"""python -m cnncore: see cnncore.cli."""

import sys

from .cli import main

sys.exit(main())
