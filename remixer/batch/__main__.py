"""``python -m remixer.batch``: the same command as ``python -m remixer batch``, started without
loading any model code (which a remote batch never needs)."""
import sys

from remixer.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
