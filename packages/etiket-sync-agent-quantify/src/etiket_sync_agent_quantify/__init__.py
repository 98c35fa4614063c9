"""Sync Quantify data directories to eTiKeT: one dataset per ``YYYYmmDD/<tuid>[-<name>]`` folder.

See :mod:`etiket_sync_agent_quantify.sync` for what is uploaded and how live runs are followed,
:mod:`etiket_sync_agent_quantify.dataset` for reading ``dataset.hdf5`` (HDF5 or netCDF3) from a
private copy, and :mod:`etiket_sync_agent_quantify.testing` for generators of realistic folders.
"""

from etiket_sync_agent_quantify.convert import GridError, write_flat, write_gridded
from etiket_sync_agent_quantify.dataset import (
    DatasetFormat,
    DatasetReadError,
    QuantifyDataset,
    Variable,
    private_copy,
    read_dataset,
    sniff_format,
)
from etiket_sync_agent_quantify.sync import (
    DATASET_FILE,
    GRIDDED_FILE,
    NETCDF4_FILE,
    QuantifyConfig,
    QuantifySync,
)
from etiket_sync_agent_quantify.tuid import is_valid_tuid, parse_folder_name, tuid_time

__all__ = [
    "DATASET_FILE",
    "GRIDDED_FILE",
    "NETCDF4_FILE",
    "DatasetFormat",
    "DatasetReadError",
    "GridError",
    "QuantifyConfig",
    "QuantifyDataset",
    "QuantifySync",
    "Variable",
    "is_valid_tuid",
    "parse_folder_name",
    "private_copy",
    "read_dataset",
    "sniff_format",
    "tuid_time",
    "write_flat",
    "write_gridded",
]
