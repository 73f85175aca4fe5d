"""python -m spikestream"""

import sys

from spikestream.cli import main

sys.exit(main())
