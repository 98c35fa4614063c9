"""Make the legacy example backend importable as a top-level module, as an installed one is."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
