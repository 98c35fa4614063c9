"""The eTiKeT client: typed models, one error hierarchy, retries, resumable uploads, credentials.

```python
from etiket_sync_agent.platform import EtiketClient, Uploader

async with EtiketClient(url, token) as client:
    scope = await client.find_scope("my scope")
    ...
    await Uploader(client).upload(path, file_uuid, version_id)
```
"""

from etiket_sync_agent.platform.client import (
    API_TIMEOUT,
    EtiketClient,
    RetryPolicy,
    SyncEtiketClient,
    run_sync,
)
from etiket_sync_agent.platform.credentials import (
    Credentials,
    delete_credentials,
    load_credentials,
    save_credentials,
)
from etiket_sync_agent.platform.errors import (
    AuthError,
    ChecksumMismatchError,
    ConflictError,
    ConnectionBlockedError,
    EtiketError,
    FileChangedError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ServerError,
    UploadError,
    ValidationFailedError,
)
from etiket_sync_agent.platform.models import (
    DatasetCreate,
    DatasetRead,
    DatasetUpdate,
    FileCreate,
    FileRead,
    FileStatus,
    FileType,
    MultipartUpload,
    Scope,
    SinglePartLink,
    UploadedPart,
    UploadedParts,
    UserInfo,
)
from etiket_sync_agent.platform.upload import (
    DEFAULT_PART_CONCURRENCY,
    DEFAULT_SINGLE_PART_THRESHOLD,
    MAX_PARTS,
    JsonFileStateStore,
    MemoryStateStore,
    Uploader,
    UploadResult,
    UploadState,
    UploadStateStore,
    put_timeout,
)

__all__ = [
    "API_TIMEOUT",
    "DEFAULT_PART_CONCURRENCY",
    "DEFAULT_SINGLE_PART_THRESHOLD",
    "MAX_PARTS",
    "AuthError",
    "ChecksumMismatchError",
    "ConflictError",
    "ConnectionBlockedError",
    "Credentials",
    "DatasetCreate",
    "DatasetRead",
    "DatasetUpdate",
    "EtiketClient",
    "EtiketError",
    "FileChangedError",
    "FileCreate",
    "FileRead",
    "FileStatus",
    "FileType",
    "JsonFileStateStore",
    "MemoryStateStore",
    "MultipartUpload",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RequestRejectedError",
    "RetryPolicy",
    "Scope",
    "ServerError",
    "SinglePartLink",
    "SyncEtiketClient",
    "UploadError",
    "UploadResult",
    "UploadState",
    "UploadStateStore",
    "UploadedPart",
    "UploadedParts",
    "Uploader",
    "UserInfo",
    "ValidationFailedError",
    "delete_credentials",
    "load_credentials",
    "put_timeout",
    "run_sync",
    "save_credentials",
]
