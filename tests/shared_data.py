"""Where the shared real data sets are: ../shared/data beside the project (or $RNNLAB_SHARED_DATA)."""

import os
from pathlib import Path

SHARED = Path(os.environ.get("RNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
