"""``python -m stormproof.harness.faults --host 127.0.0.1 --port 8474``."""

import sys

from stormproof.harness.faults.server import main

sys.exit(main())
