"""Time uploads to a local server with plain httpx (no agent code): prints numbers, asserts nothing.

Runs the server out of process (``etiket-local-server serve``) so that client and server do not
share a GIL, then measures, for a file of ``--mib`` MiB held in memory:

- one single-part PUT of the whole file (+ validation),
- a multipart upload with parts PUT one after the other,
- a multipart upload with ``--concurrency`` parts in flight (threads, one httpx client).

Part MD5s and the whole-file MD5 are computed before the clock starts, so the numbers show what
the server costs. Usage: ``uv run python tools/etiket-local-server/bench/bench_local_server_upload.py --mib 256``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chunks(view: memoryview, size: int = MIB) -> Iterator[bytes]:
    """Stream a body in 1 MiB pieces: httpx sends one huge ``bytes`` body ~4x slower."""
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "etiket_local_server", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="etiket-bench-"))
    port = _free_port()
    token = _cli("token", "create", "--data-dir", str(data_dir))
    scope = _cli("scope", "create", "bench scope", "--data-dir", str(data_dir))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etiket_local_server",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/api/v3/")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        payload = os.urandom(args.mib * MIB)
        whole_md5 = hashlib.md5(payload).hexdigest()
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)
        store = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=args.concurrency))
        dataset = str(uuid.uuid4())
        api.post(
            "/api/v2/dataset/",
            json={
                "uuid": dataset,
                "collected": "2024-01-01T00:00:00+00:00",
                "name": "bench",
                "creator": "local",
                "keywords": [],
                "ranking": 0,
                "scope_uuid": scope,
            },
        ).raise_for_status()

        def announce() -> str:
            file_uuid = str(uuid.uuid4())
            api.post(
                "/api/v2/file/",
                json={
                    "uuid": file_uuid,
                    "version_id": 1,
                    "name": file_uuid,
                    "filename": "bench.bin",
                    "creator": "local",
                    "collected": "2024-01-01T00:00:00+00:00",
                    "size": len(payload),
                    "type": "UNKNOWN",
                    "ds_uuid": dataset,
                },
            ).raise_for_status()
            return file_uuid

        def single() -> None:
            file_uuid = announce()
            url = api.get(
                "/api/v2/file/presigned_link/single_part/",
                params={"file_uuid": file_uuid, "version_id": 1},
            ).json()["url"]
            store.put(
                url,
                content=_chunks(memoryview(payload)),
                headers={"Content-Length": str(len(payload))},
            ).raise_for_status()
            api.post(
                "/api/v2/file/validate_upload/single_part/",
                json={
                    "uuid": file_uuid,
                    "version_id": 1,
                    "md5_checksum": whole_md5,
                    "upload_id": "",
                    "etags": [],
                },
            ).raise_for_status()

        def multipart(workers: int) -> None:
            file_uuid = announce()
            upload = api.get(
                "/api/v2/file/presigned_link/", params={"file_uuid": file_uuid, "version_id": 1}
            ).json()
            size = upload["part_size"]
            views = [memoryview(payload)[i : i + size] for i in range(0, len(payload), size)]

            def put(pair: tuple[str, memoryview]) -> str:
                response = store.put(
                    pair[0], content=_chunks(pair[1]), headers={"Content-Length": str(len(pair[1]))}
                )
                response.raise_for_status()
                return str(response.headers["etag"]).strip('"')

            with ThreadPoolExecutor(workers) as pool:
                etags = list(pool.map(put, zip(upload["presigned_urls"], views, strict=True)))
            validating = time.perf_counter()
            api.post(
                "/api/v2/file/validate_upload/",
                json={
                    "uuid": file_uuid,
                    "version_id": 1,
                    "md5_checksum": whole_md5,
                    "upload_id": upload["upload_id"],
                    "etags": etags,
                },
            ).raise_for_status()
            print(
                f"  (validation of {len(etags)} parts took {time.perf_counter() - validating:.2f} s)"
            )

        print(f"file: {args.mib} MiB, server: {base} (separate process)")
        results = {}
        for label, run in (
            ("single PUT", single),
            ("multipart, sequential parts", lambda: multipart(1)),
            (f"multipart, {args.concurrency} parts in flight", lambda: multipart(args.concurrency)),
        ):
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
            results[label] = elapsed
            print(f"{label:34s} {elapsed:7.2f} s  {args.mib / elapsed:7.1f} MiB/s")
        baseline = results["single PUT"]
        for label, elapsed in results.items():
            print(f"ratio to single PUT  {label:34s} {baseline / elapsed:5.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
