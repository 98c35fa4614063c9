"""The existing agent's per-dataset sync record, mapped onto our :class:`SyncContext`."""

from etiket_sync_agent.sync.sync_records.manager import FileUploadInfo, SyncRecordManager

__all__ = ["FileUploadInfo", "SyncRecordManager"]
