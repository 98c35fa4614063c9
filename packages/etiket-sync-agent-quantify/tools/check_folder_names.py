"""Check which experiment folder names quantify-core's own ``load_dataset`` opens.

Two steps, because quantify-core (with a qcodes it can import, e.g. quantify-core 0.9.1 with
qcodes 0.44 on Python 3.12) does not install next to the workspace::

    uv run python tools/check_folder_names.py write DIR          # the workspace interpreter
    /path/to/venv/bin/python tools/check_folder_names.py check DIR > tests/data/folder_names.json

``write`` lays out one experiment per style of
``etiket_sync_agent_quantify.testing.FOLDER_NAME_CASES``; ``check`` calls
``quantify_core.data.handling.load_dataset(tuid)`` for each and prints style → whether it opened
the folder, plus the versions used. ``tests/test_quantify_corners.py`` compares our discovery
with the committed result.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

WHEN = dt.datetime(2024, 3, 4, 9, 15, 7, 456000)


def write(root: Path) -> None:
    from etiket_sync_agent_quantify.testing import write_folder_name_cases

    root.mkdir(parents=True, exist_ok=True)
    tuids = write_folder_name_cases(root, WHEN)
    (root / "tuids.json").write_text(json.dumps(tuids, indent=2), encoding="utf-8")


def check(root: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import qcodes
    import quantify_core
    from quantify_core.data.handling import load_dataset, set_datadir

    set_datadir(str(root))
    tuids = json.loads((root / "tuids.json").read_text(encoding="utf-8"))
    opened: dict[str, bool] = {}
    for style, tuid in tuids.items():
        try:
            ds = load_dataset(tuid)
        except Exception:
            opened[style] = False
        else:
            opened[style] = ds.attrs.get("tuid") == tuid
    result = {
        "quantify_core": quantify_core.__version__,
        "qcodes": qcodes.__version__,
        "load_dataset_opens": opened,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    verb, folder = sys.argv[1], Path(sys.argv[2])
    {"write": write, "check": check}[verb](folder)
