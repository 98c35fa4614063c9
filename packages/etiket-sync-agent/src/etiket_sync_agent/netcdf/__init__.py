"""netCDF helpers shared by the agent, its backends and the local server.

Needs the ``netcdf`` extra (``pip install etiket-sync-agent[netcdf]``): h5netcdf, h5py and numpy.
"""

from etiket_sync_agent.netcdf.checksum import (
    Md5NetCDF4,
    NetCDFChecksumError,
    md5_netcdf4,
)

__all__ = ["Md5NetCDF4", "NetCDFChecksumError", "md5_netcdf4"]
