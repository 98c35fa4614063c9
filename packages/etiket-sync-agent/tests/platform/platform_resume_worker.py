"""Subprocess of test_platform_resume.py: upload one file with a JSON-file resume store.

Usage: python platform_resume_worker.py URL TOKEN PATH FILE_UUID VERSION_ID STATE_FILE HANG_AFTER

With HANG_AFTER > 0 the worker prints ``hanging`` once that many parts were acknowledged and then
blocks its event loop (so the test can kill it with parts in flight); with 0 it uploads to the
end and prints ``finished <md5> <bytes_sent> <resumed_parts>``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from etiket_sync_agent.platform import EtiketClient, JsonFileStateStore, Uploader


async def _main(argv: list[str]) -> None:
    url, token, path, file_uuid, version_id, state_file, hang_after = argv
    acknowledged: list[int] = []

    def progress(sent: int) -> None:
        acknowledged.append(sent)
        if int(hang_after) and len(acknowledged) == int(hang_after):
            print("hanging", flush=True)
            time.sleep(600)  # blocks the loop: in-flight PUTs stall until the kill

    async with EtiketClient(url, token) as client:
        result = await Uploader(client, part_concurrency=2).upload(
            Path(path),
            file_uuid,
            int(version_id),
            resume=JsonFileStateStore(Path(state_file)),
            progress=progress,
        )
    print(f"finished {result.md5} {result.bytes_sent} {result.resumed_parts}", flush=True)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
