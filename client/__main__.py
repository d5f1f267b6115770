"""``python -m venvd.client``."""

import sys

from venvd.client.main import main

sys.exit(main())
