"""Sync Labber HDF5 log files to eTiKeT.

One dataset per ``.hdf5`` log file below the Labber data folder (``YYYY/MM/Data_MMDD/``), keyed by
relative path and creation time. Uploaded per dataset: the original file, one converted netCDF per
log (``measured_data.hdf5``, ``measured_data_Log_2.hdf5``, ...), ``settings.json`` and
``instruments.json``. The newest log is synced live while Labber is still writing it.
"""

from __future__ import annotations

from etiket_sync_agent_labber.config import DATABASE_FILE, LabberConfig, LabberDirectoryWarning
from etiket_sync_agent_labber.sync import GENERATOR, LabberSync, converted_name, natural_key

__all__ = [
    "DATABASE_FILE",
    "GENERATOR",
    "LabberConfig",
    "LabberDirectoryWarning",
    "LabberSync",
    "converted_name",
    "natural_key",
]
