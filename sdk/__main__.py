"""`python -m vlmscope` runs the CLI."""

import sys

from vlmscope.cli import main

sys.exit(main())
