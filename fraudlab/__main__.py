"""Entry point for `python -m fraudlab`."""
import sys

from fraudlab.cli import main

sys.exit(main())
