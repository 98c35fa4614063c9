"""Change detection for file sources: scans (cached by directory mtime) and file-system events."""

from etiket_sync_agent.detect.scan import (
    DATASET_INFO_FILE,
    FileStat,
    ScanResult,
    TreeScanner,
    discover_file_items,
    fingerprint_path,
)

__all__ = [
    "DATASET_INFO_FILE",
    "FileStat",
    "ScanResult",
    "TreeScanner",
    "discover_file_items",
    "fingerprint_path",
]
