"""The reader's helper process: reads numeric row ranges of a results table for the parent.

Run as ``python -I -S _rowhelper.py URI BUSY_TIMEOUT`` by :mod:`etiket_sync_agent_qcodes.reader`
(standard library only, so it starts in a few milliseconds and imports nothing of the package).
``URI`` is the parent's read-only ``file:...?mode=ro`` URI: this process never writes either.

Protocol, over stdin/stdout (binary):

- request: one line of JSON, a list of ``[sql, params]`` queries;
- reply, per query in order: a header of two little-endian int64 (``status``, ``size``) and
  ``size`` bytes: status 0: the values of all rows, row by row, as native float64; status 1: a
  value was not a float or an int (NULL, text, blob): the parent reads this query itself;
  status 2: an error (UTF-8 message); the parent then stops using this helper.

The values are converted like the parent's fast path does (``float`` as is, ``int`` rounded to the
nearest double), so a status-0 reply equals what the parent would have read.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import struct
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

OK, NOT_NUMERIC, ERROR = 0, 1, 2
HEADER = struct.Struct("<qq")
T = TypeVar("T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLITE_BUSY/LOCKED (a writer is committing): worth a retry."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_while_busy(what: Callable[[], T], *, attempts: int = 8, pause: float = 0.05) -> T:
    """Run ``what``; on SQLITE_BUSY wait and try again (also used by the reader itself)."""
    for attempt in range(attempts):
        try:
            return what()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def read_query(conn: sqlite3.Connection, sql: str, params: list[Any]) -> tuple[int, bytes]:
    """(status, payload) of one query (retried while the database is busy)."""
    try:
        values = retry_while_busy(
            lambda: array("d", itertools.chain.from_iterable(conn.execute(sql, params)))
        )
    except TypeError:
        return NOT_NUMERIC, b""
    except sqlite3.Error as exc:
        return ERROR, str(exc).encode("utf-8", errors="replace")
    return OK, values.tobytes()


def serve(uri: str, busy_timeout: float, requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until ``requests`` ends."""
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout)
    try:
        for line in requests:
            for sql, params in json.loads(line):
                status, payload = read_query(conn, sql, params)
                replies.write(HEADER.pack(status, len(payload)))
                replies.write(payload)
            replies.flush()
    finally:
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], float(sys.argv[2]), sys.stdin.buffer, sys.stdout.buffer)
