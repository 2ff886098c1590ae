"""``python -m harness.faults --host 127.0.0.1 --port 8474``."""

import sys

from harness.faults.server import main

sys.exit(main())
