"""`python -m reprolab.cli ...` (also under torchrun: `torchrun ... -m reprolab.cli train ...`)."""

import sys

from reprolab.cli import main

sys.exit(main())
