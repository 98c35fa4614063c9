"""Sync core-tools PostgreSQL measurement databases to eTiKeT.

core-tools (the Delft spin-qubit measurement library) keeps one row per measurement in
``global_measurement_overview`` and the data of each parameter in a PostgreSQL large object. This
backend reads them with psycopg 3 in read-only transactions (no ``core_tools`` import) and uploads,
per measurement, ``measured_data.hdf5`` (HDF5-netCDF4), ``snapshot.json`` and ``metadata.json``.

- :class:`CoreToolsConfig`: ``dbname``, ``user``, ``password`` (secret), ``host``, ``port``,
  ``stale_after``.
- :class:`CoreToolsSync`: the backend (entry point ``core-tools``).
- :mod:`etiket_sync_agent_core_tools.testing`: generators of realistic core-tools databases.
"""

from __future__ import annotations

from etiket_sync_agent_core_tools.config import CoreToolsConfig
from etiket_sync_agent_core_tools.sync import CoreToolsSync

__all__ = ["CoreToolsConfig", "CoreToolsSync"]
