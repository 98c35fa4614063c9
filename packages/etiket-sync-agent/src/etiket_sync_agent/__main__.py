"""``python -m etiket_sync_agent``: the ``etiket-sync`` command line (``run`` by default)."""

from __future__ import annotations

import sys

from etiket_sync_agent.cli.main import main

if __name__ == "__main__":
    # With no arguments the module runs the agent, as the existing agent's service units expect.
    sys.exit(main(sys.argv[1:] or ["run"]))
