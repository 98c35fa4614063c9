"""Where the agent keeps its state: everything lives under one folder, the agent home.

``ETIKET_SYNC_HOME`` overrides the home (default: the platform's user data folder);
``ETIKET_SYNC_DB_URL`` overrides the tracking store (default: SQLite ``<home>/sync.db``).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["agent_home", "credentials_path", "database_url", "lock_path", "log_dir"]


def agent_home() -> Path:
    """The agent home, created (mode 0700) when missing."""
    configured = os.environ.get("ETIKET_SYNC_HOME")
    home = (
        Path(configured).expanduser()
        if configured
        else Path(platformdirs.user_data_dir("etiket-sync-agent", appauthor=False))
    )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def database_url() -> str:
    """SQLAlchemy URL of the tracking store."""
    return os.environ.get("ETIKET_SYNC_DB_URL") or f"sqlite:///{agent_home() / 'sync.db'}"


def credentials_path() -> Path:
    """The server URL and API token (mode 0600)."""
    return agent_home() / "credentials.json"


def lock_path() -> Path:
    """The single-instance lock file."""
    return agent_home() / "agent.lock"


def log_dir() -> Path:
    """Folder for log files (created when missing)."""
    path = agent_home() / "logs"
    path.mkdir(exist_ok=True)
    return path
