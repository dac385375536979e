"""python3 -m rfenv_shim (with the package on sys.path) runs the server."""

import sys

from .main import main

sys.exit(main())
