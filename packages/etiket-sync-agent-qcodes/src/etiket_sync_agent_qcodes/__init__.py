"""Sync QCoDeS SQLite databases to eTiKeT.

The backend reads a QCoDeS database with :mod:`sqlite3` only (read-only URI, WAL-aware, no
``qcodes`` import) and uploads, per started run, ``measured_data.hdf5`` (netCDF4/HDF5 laid out like
QCoDeS' own xarray export) and ``snapshot.json``.

- :class:`QCoDeSConfig`: ``database_path``, ``set_up``, ``static_attributes``, ``stale_after``.
- :class:`QCoDeSSync`: the backend (entry point ``qcodes``).
- :mod:`etiket_sync_agent_qcodes.testing`: writers of QCoDeS databases for tests and demos.
"""

from __future__ import annotations

from etiket_sync_agent_qcodes.config import QCoDeSConfig
from etiket_sync_agent_qcodes.sync import QCoDeSSync

__all__ = ["QCoDeSConfig", "QCoDeSSync"]
