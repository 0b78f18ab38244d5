"""``python -m dockyard.cli`` is ``dockyard``."""

import sys

from dockyard.cli.main import main

sys.exit(main())
