"""Upload benchmarks of the eTiKeT client (issue 8). Prints numbers and ratios against baselines
measured in the same run, against the same local server; asserts nothing.

The local server runs in its own process (``etiket-local-server serve`` on a free loopback port),
so client and server do not share an interpreter.

(a) Large file: one file (default 1 GiB) through ``Uploader`` (multipart, concurrent parts,
    hashing while reading, verified by the server) against a bare single-stream httpx PUT of the
    same bytes to a presigned single-part URL of the same server (baseline: no hashing, no
    validation). Target ratio ≥ 0.9.
(b) Small files: N x 10 KiB files through the client with concurrency (ensure_file_version +
    Uploader.upload each) against sequential one-at-a-time uploads with a plain keep-alive httpx
    client (POST file version, GET presigned link, PUT, POST validate). Target ratio ≥ 8x.
(c) The same small-file comparison against a server that answers every request after an emulated
    network round trip (``--wan-rtt-ms``, default 20 ms; 0 skips it): the setting concurrency is
    for. The sequential baseline is timed on the first ``--wan-baseline-count`` files (its time per
    file is constant) and the ratio compares files per second.

For (a) and (b) the benchmark also prints the *CPU ceiling*: on loopback, client and server share
this machine's cores, so no client can beat ``baseline seconds / (CPU seconds the measured run
needed / cores)``. A ratio close to its ceiling means the client is not what limits it.

Usage: python tools/bench/bench_upload.py [--quick] [--large-mib N] [--small-count N]
       [--small-kib N] [--concurrency N] [--part-concurrency N] [--wan-rtt-ms MS]
       [--wan-count N] [--wan-baseline-count N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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
from pathlib import Path
from typing import Any

import httpx

from etiket_sync_agent.platform import (
    DatasetCreate,
    EtiketClient,
    FileCreate,
    FileType,
    Uploader,
)

MiB = 1024 * 1024
NOW = dt.datetime.now(dt.timezone.utc)


# -- the server process ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "etiket_local_server", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1].strip()


class ServerProcess:
    """``etiket-local-server serve`` in a subprocess, with a token and a scope."""

    def __init__(self, data_dir: Path, rtt_ms: float = 0.0) -> None:
        self.data_dir = data_dir
        self.token = _cli("token", "create", "--data-dir", str(data_dir), "--name", "bench")
        self.scope = _cli("scope", "create", "bench scope", "--data-dir", str(data_dir))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etiket_local_server",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                # Emulated network round trip: every request waits rtt_ms before it is handled.
                *(
                    ["--fault-stall-seconds", str(rtt_ms / 1000), "--fault-stall-rate", "1.0"]
                    if rtt_ms > 0
                    else []
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/api/v3/", timeout=1)
                break
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"the local server did not start: {err}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- helpers --------------------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds used by this process and by the server process over a block."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client_s = 0.0
        self.server_s: float | None = 0.0

    def _server_cpu(self) -> float | None:
        try:  # Linux: utime + stime of the server process
            fields = Path(f"/proc/{self.server.process.pid}/stat").read_text().rsplit(")", 1)[1]
            ticks = fields.split()
            return (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def __enter__(self) -> CpuMeter:
        self._client0 = time.process_time()
        self._server0 = self._server_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client_s = time.process_time() - self._client0
        end = self._server_cpu()
        self.server_s = None if end is None or self._server0 is None else end - self._server0

    def describe(self) -> str:
        server = "n/a" if self.server_s is None else f"{self.server_s:.1f}"
        return f"{self.client_s:.1f} / {server}"

    def total(self) -> float | None:
        """CPU seconds of client and server together (None where the server's are unknown)."""
        return None if self.server_s is None else self.client_s + self.server_s


def ceiling(baseline_s: float, cpu_s: float | None) -> float | None:
    """The best ratio this machine allows: the baseline's time over the measured run's CPU
    seconds spread perfectly over every core (client and server share them on loopback)."""
    if cpu_s is None or cpu_s <= 0:
        return None
    return baseline_s / (cpu_s / (os.cpu_count() or 1))


def _write_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as handle:
        written, index = 0, 0
        while written < size:
            chunk = (index.to_bytes(8, "little") + block)[: min(MiB, size - written)]
            handle.write(chunk)
            written += len(chunk)
            index += 1


def _dataset(scope: str, name: str) -> DatasetCreate:
    return DatasetCreate(
        uuid=str(uuid.uuid4()), collected=NOW, name=name, creator="local", scope_uuid=scope
    )


def _file(ds_uuid: str, path: Path, name: str | None = None) -> FileCreate:
    return FileCreate(
        name=name or path.name,
        filename=path.name,
        uuid=str(uuid.uuid4()),
        creator="local",
        collected=NOW,
        size=path.stat().st_size,
        type=FileType.UNKNOWN,
        version_id=1,
        ds_uuid=ds_uuid,
    )


def _chunks(path: Path, size: int = MiB) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while block := handle.read(size):
            yield block


def _mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


# -- (a) large file -------------------------------------------------------------------------------
async def _prepare_versions(server: ServerProcess, path: Path, count: int) -> list[FileCreate]:
    async with EtiketClient(server.url, server.token) as client:
        ds = await client.ensure_dataset(_dataset(server.scope, "large file"))
        files = [_file(ds.uuid, path, name=f"large-{i}") for i in range(count)]
        for file in files:
            await client.ensure_file_version(file)
        return files


def bare_put(server: ServerProcess, path: Path, file: FileCreate) -> float:
    """Seconds for one streamed PUT of the file to a presigned single-part URL."""
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(timeout=600) as http:
        link = http.get(
            f"{server.url}/api/v2/file/presigned_link/single_part/",
            params={"file_uuid": file.uuid, "version_id": file.version_id},
            headers=headers,
        ).json()
        start = time.perf_counter()
        response = http.put(
            link["url"],
            content=_chunks(path),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(path.stat().st_size),
            },
        )
        elapsed = time.perf_counter() - start
        response.raise_for_status()
    return elapsed


async def client_upload(
    server: ServerProcess, path: Path, file: FileCreate, part_concurrency: int
) -> tuple[float, int]:
    """Seconds for Uploader.upload (presign, parts, validate) and the part count."""
    async with EtiketClient(server.url, server.token) as client:
        uploader = Uploader(client, part_concurrency=part_concurrency)
        start = time.perf_counter()
        result = await uploader.upload(path, file.uuid, file.version_id)
        return time.perf_counter() - start, result.parts


def bench_large(
    server: ServerProcess, work: Path, size: int, part_concurrency: int, rounds: int
) -> dict[str, Any]:
    path = work / "large.bin"
    _write_file(path, size)
    files = asyncio.run(_prepare_versions(server, path, 2 * rounds))
    bare_times: list[tuple[float, str]] = []
    client_times: list[tuple[float, str, float | None]] = []
    parts = 0
    for r in range(rounds):  # alternate, so neither side always gets the warmer cache
        with CpuMeter(server) as meter:
            seconds = bare_put(server, path, files[2 * r])
        bare_times.append((seconds, meter.describe()))
        with CpuMeter(server) as meter:
            seconds, parts = asyncio.run(
                client_upload(server, path, files[2 * r + 1], part_concurrency)
            )
        client_times.append((seconds, meter.describe(), meter.total()))
    path.unlink()
    (bare, bare_cpu), (ours, our_cpu, our_total) = min(bare_times), min(client_times)
    return {
        "ceiling": ceiling(bare, our_total),
        "bare_cpu": bare_cpu,
        "client_cpu": our_cpu,
        "size": size,
        "parts": parts,
        "bare_s": bare,
        "client_s": ours,
        "bare_mbps": _mbps(size, bare),
        "client_mbps": _mbps(size, ours),
        "ratio": bare / ours,
    }


# -- (b) many small files -------------------------------------------------------------------------
def sequential_small(server: ServerProcess, paths: list[Path], ds_uuid: str) -> float:
    """Seconds for one-at-a-time uploads: create version, presign, PUT, validate."""
    headers = {"Authorization": f"Bearer {server.token}"}
    base = server.url
    with httpx.Client(timeout=30, headers=headers) as http, httpx.Client(timeout=30) as store:
        start = time.perf_counter()
        for path in paths:
            file = _file(ds_uuid, path)
            data = path.read_bytes()
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            http.post(f"{base}/api/v2/file/", json=file.model_dump(mode="json")).raise_for_status()
            link = http.get(
                f"{base}/api/v2/file/presigned_link/single_part/",
                params={"file_uuid": file.uuid, "version_id": file.version_id},
            )
            link.raise_for_status()
            store.put(
                link.json()["url"],
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            ).raise_for_status()
            http.post(
                f"{base}/api/v2/file/validate_upload/single_part/",
                json={
                    "uuid": file.uuid,
                    "version_id": file.version_id,
                    "md5_checksum": md5,
                    "upload_id": "",
                    "etags": [],
                },
            ).raise_for_status()
        return time.perf_counter() - start


async def concurrent_small(
    server: ServerProcess, paths: list[Path], ds_uuid: str, concurrency: int
) -> float:
    """Seconds for the same uploads through EtiketClient + Uploader, ``concurrency`` at once."""
    async with EtiketClient(server.url, server.token, max_connections=concurrency) as client:
        uploader = Uploader(client)
        gate = asyncio.Semaphore(concurrency)

        async def one(path: Path) -> None:
            async with gate:
                record = await client.ensure_file_version(_file(ds_uuid, path))
                await uploader.upload(path, record.uuid, record.version_id)

        start = time.perf_counter()
        await asyncio.gather(*(one(path) for path in paths))
        return time.perf_counter() - start


async def _small_datasets(server: ServerProcess) -> tuple[str, str]:
    async with EtiketClient(server.url, server.token) as client:
        a = await client.ensure_dataset(_dataset(server.scope, "small sequential"))
        b = await client.ensure_dataset(_dataset(server.scope, "small concurrent"))
        return a.uuid, b.uuid


def bench_small(
    server: ServerProcess,
    work: Path,
    count: int,
    size: int,
    concurrency: int,
    baseline_count: int | None = None,
) -> dict[str, Any]:
    """Sequential uploads of the first ``baseline_count`` files (default: all) against concurrent
    uploads of all ``count``; the ratio compares files per second."""
    folder = Path(tempfile.mkdtemp(prefix="small-", dir=work))
    paths = []
    for i in range(count):
        path = folder / f"s{i:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    baseline_paths = paths[: baseline_count or count]
    seq_ds, conc_ds = asyncio.run(_small_datasets(server))
    with CpuMeter(server) as seq_meter:
        sequential = sequential_small(server, baseline_paths, seq_ds)
    with CpuMeter(server) as conc_meter:
        concurrent = asyncio.run(concurrent_small(server, paths, conc_ds, concurrency))
    shutil.rmtree(folder)
    sequential_fps = len(baseline_paths) / sequential
    client_fps = count / concurrent
    # the time the sequential baseline needs for all ``count`` files, at its measured rate
    sequential_all = count / sequential_fps
    return {
        "ceiling": ceiling(sequential_all, conc_meter.total()),
        "sequential_cpu": seq_meter.describe(),
        "client_cpu": conc_meter.describe(),
        "count": count,
        "baseline_count": len(baseline_paths),
        "sequential_s": sequential,
        "client_s": concurrent,
        "sequential_fps": sequential_fps,
        "client_fps": client_fps,
        "ratio": client_fps / sequential_fps,
    }


# -- main -----------------------------------------------------------------------------------------
def _ceiling_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB and 500 small files")
    parser.add_argument("--large-mib", type=int, default=None, help="large file size (MiB)")
    parser.add_argument("--small-count", type=int, default=None, help="number of small files")
    parser.add_argument("--small-kib", type=int, default=10, help="small file size (KiB)")
    parser.add_argument("--concurrency", type=int, default=8, help="small uploads at once")
    parser.add_argument("--part-concurrency", type=int, default=4, help="parts in flight")
    parser.add_argument("--rounds", type=int, default=None, help="large-file rounds (best of)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="emulate a network round trip for (a) and (b) too: the server waits this long per "
        "request (loopback has none, so concurrency cannot hide any latency)",
    )
    parser.add_argument(
        "--wan-rtt-ms",
        type=float,
        default=20.0,
        help="emulated round trip of benchmark (c); 0 skips (c)",
    )
    parser.add_argument("--wan-count", type=int, default=None, help="files uploaded in (c)")
    parser.add_argument(
        "--wan-baseline-count",
        type=int,
        default=None,
        help="files the sequential baseline of (c) uploads (its time per file is constant)",
    )
    parser.add_argument(
        "--wan-concurrency", type=int, default=16, help="small uploads at once in (c)"
    )
    args = parser.parse_args(argv)
    large_mib = args.large_mib or (256 if args.quick else 1024)
    small_count = args.small_count or (500 if args.quick else 10_000)
    rounds = args.rounds or (2 if args.quick else 1)
    wan_count = args.wan_count or (300 if args.quick else 3_000)
    wan_baseline = min(wan_count, args.wan_baseline_count or (100 if args.quick else 500))

    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    wan: dict[str, Any] | None = None
    try:
        server = ServerProcess(work / "server", args.rtt_ms)
        try:
            print(
                f"local server {server.url} (subprocess), work dir {work}, emulated RTT "
                f"{args.rtt_ms:g} ms, {os.cpu_count()} cores shared by client and server",
                flush=True,
            )
            large = bench_large(server, work, large_mib * MiB, args.part_concurrency, rounds)
            small = bench_small(server, work, small_count, args.small_kib * 1024, args.concurrency)
        finally:
            server.stop()
        if args.wan_rtt_ms > 0:
            wan_server = ServerProcess(work / "wan-server", args.wan_rtt_ms)
            try:
                print(
                    f"local server {wan_server.url}, emulated RTT {args.wan_rtt_ms:g} ms",
                    flush=True,
                )
                wan = bench_small(
                    wan_server,
                    work,
                    wan_count,
                    args.small_kib * 1024,
                    args.wan_concurrency,
                    baseline_count=wan_baseline,
                )
            finally:
                wan_server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("(a) large file", f"{large_mib} MiB", "", "", "", "", ""),
        (
            "    bare httpx PUT (baseline)",
            "1 stream",
            f"{large['bare_s']:.2f} s",
            f"{large['bare_mbps']:.0f} MB/s",
            large["bare_cpu"],
            "",
            "",
        ),
        (
            "    Uploader",
            f"{int(large['parts'])} parts x{args.part_concurrency}",
            f"{large['client_s']:.2f} s",
            f"{large['client_mbps']:.0f} MB/s",
            large["client_cpu"],
            f"{large['ratio']:.2f}  (target >= 0.9)",
            _ceiling_text(large["ceiling"]),
        ),
        ("(b) small files", f"{small_count} x {args.small_kib} KiB", "", "", "", "", ""),
        (
            "    sequential (baseline)",
            "1 at a time",
            f"{small['sequential_s']:.2f} s",
            f"{small['sequential_fps']:.0f} files/s",
            small["sequential_cpu"],
            "",
            "",
        ),
        (
            "    EtiketClient + Uploader",
            f"{args.concurrency} at once",
            f"{small['client_s']:.2f} s",
            f"{small['client_fps']:.0f} files/s",
            small["client_cpu"],
            f"{small['ratio']:.2f}x (target >= 8x)",
            _ceiling_text(small["ceiling"]),
        ),
    ]
    if wan is not None:
        rows += [
            (
                f"(c) small files, {args.wan_rtt_ms:g} ms RTT",
                f"{wan_count} x {args.small_kib} KiB",
                "",
                "",
                "",
                "",
                "",
            ),
            (
                "    sequential (baseline)",
                f"1 at a time, {wan['baseline_count']} files",
                f"{wan['sequential_s']:.2f} s",
                f"{wan['sequential_fps']:.1f} files/s",
                wan["sequential_cpu"],
                "",
                "",
            ),
            (
                "    EtiketClient + Uploader",
                f"{args.wan_concurrency} at once",
                f"{wan['client_s']:.2f} s",
                f"{wan['client_fps']:.0f} files/s",
                wan["client_cpu"],
                f"{wan['ratio']:.2f}x (target >= 8x)",
                _ceiling_text(wan["ceiling"]),
            ),
        ]
    header = ("benchmark", "shape", "time", "throughput", "CPU s client/server", "ratio", "ceiling")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)
    print(
        "CPU s = CPU seconds of this process (client) and of the server process during the run.\n"
        "ceiling = the best ratio this machine allows: the baseline's time over the measured\n"
        "run's client + server CPU seconds spread over every core (they share the cores here).\n"
        "A ratio near its ceiling is limited by the machine's CPU, not by the client."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
