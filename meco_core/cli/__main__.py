"""`python -m meco_core.cli ...` (how `meco compare` starts its training runs)."""
import sys

from .app import main

if __name__ == "__main__":
    sys.exit(main())
