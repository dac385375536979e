#!/usr/bin/env python3
"""rfenv shim launcher: runs the server of the rfenv_shim package next to this file.

rfenv copies this file to /rfenv/shim.py and the package to /rfenv/rfenv_shim/, and runs
``CMD ["python3", "/rfenv/shim.py"]`` (PID 1).  The package's name is unlikely to clash with
env.py's own modules; its directory is taken off sys.path again once it is imported, so
env.py sees the same sys.path as under plain python3.
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if not sys.path or os.path.abspath(sys.path[0] or ".") != _here:
    sys.path.insert(0, _here)
from rfenv_shim.main import main  # noqa: E402

if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
    del sys.path[0]

if __name__ == "__main__":
    sys.exit(main())
