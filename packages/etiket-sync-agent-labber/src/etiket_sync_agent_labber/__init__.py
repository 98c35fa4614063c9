"""Sync Labber HDF5 log files to eTiKeT.

One dataset per ``.hdf5`` log file below the Labber data folder (``YYYY/MM/Data_MMDD/``), keyed by
relative path and creation time. Uploaded per dataset, under the existing agent's names: the
original file (``original``), one converted netCDF per log (``ds_converted``, or ``ds_converted_<i>``
when the file holds several logs), ``settings`` and ``instruments`` (JSON). The newest log is synced live while Labber is still writing it.
"""

from __future__ import annotations

from etiket_sync_agent_labber.config import DATABASE_FILE, LabberConfig, LabberDirectoryWarning
from etiket_sync_agent_labber.sync import (
    GENERATOR,
    LabberSync,
    alt_uid_of,
    converted_name,
    natural_key,
)

__all__ = [
    "DATABASE_FILE",
    "GENERATOR",
    "LabberConfig",
    "LabberDirectoryWarning",
    "LabberSync",
    "alt_uid_of",
    "converted_name",
    "natural_key",
]
