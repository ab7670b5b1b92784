"""``python -m rnnlab`` is the ``rnnlab`` command (and what ``torchrun -m rnnlab`` runs)."""

import sys

from .cli import main

sys.exit(main())
