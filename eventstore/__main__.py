"""``python -m eventstore``: the command line."""

import sys

from eventstore.cli import main

sys.exit(main())
