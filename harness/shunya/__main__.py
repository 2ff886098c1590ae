"""Entry point for ``python -m stormproof.harness.shunya``; the logic lives in ``cli.main``."""

import sys

from .cli import main

sys.exit(main())
