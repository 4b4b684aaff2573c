"""`python -m galaxy_core.cli`: the same as `galaxy-lab`."""

import sys

from galaxy_core.cli import main

sys.exit(main())
