"""Sync QUAlibrate storage to eTiKeT: one dataset per ``YYYY-MM-DD/#<id>_<name>_<HHMMSS>`` folder.

See :mod:`etiket_sync_agent_qualibrate.sync` for what is uploaded,
:mod:`etiket_sync_agent_qualibrate.node` for reading a node folder,
:mod:`etiket_sync_agent_qualibrate.results` for the merged netCDF file, and
:mod:`etiket_sync_agent_qualibrate.testing` for a writer of QUAlibrate-compatible node folders.
"""

from etiket_sync_agent_qualibrate.config import (
    QualibrateConfig,
    default_config_file,
    storage_location,
)
from etiket_sync_agent_qualibrate.node import (
    DATA_FILE,
    NODE_FILE,
    FolderName,
    NodeFolder,
    NodeReadError,
    Reference,
    parse_folder_name,
    read_node_folder,
)
from etiket_sync_agent_qualibrate.results import collect_results, write_results_netcdf
from etiket_sync_agent_qualibrate.sync import PARAMETERS_FILE, RESULTS_FILE, QualibrateSync

__all__ = [
    "DATA_FILE",
    "NODE_FILE",
    "PARAMETERS_FILE",
    "RESULTS_FILE",
    "FolderName",
    "NodeFolder",
    "NodeReadError",
    "QualibrateConfig",
    "QualibrateSync",
    "Reference",
    "collect_results",
    "default_config_file",
    "parse_folder_name",
    "read_node_folder",
    "storage_location",
    "write_results_netcdf",
]
