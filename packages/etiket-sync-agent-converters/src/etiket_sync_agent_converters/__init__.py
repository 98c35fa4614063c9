"""File converters for the eTiKeT sync agent: CSV → netCDF, zarr → netCDF, zarr → zip.

Registered in the entry-point group ``etiket_sync_agent.converters`` as ``csv-to-netcdf``,
``zarr-to-netcdf`` and ``zarr-to-zip``; name them in a folderbase ``_QH_dataset_info.yaml`` under
``converters:``. A converter raises :class:`ConversionError` (naming file and line or key) for input
it cannot convert.
"""

from etiket_sync_agent_converters.csv import CSVToNetCDF, read_csv_table
from etiket_sync_agent_converters.errors import ConversionError
from etiket_sync_agent_converters.zarr import ZarrToNetCDF, ZarrToZip, deterministic_zip
from etiket_sync_agent_converters.zarr_store import open_zarr_store

__all__ = [
    "CSVToNetCDF",
    "ConversionError",
    "ZarrToNetCDF",
    "ZarrToZip",
    "deterministic_zip",
    "open_zarr_store",
    "read_csv_table",
]
