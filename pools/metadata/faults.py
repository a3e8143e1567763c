"""What can be wrong with a metadata table that is not the query's fault: a damaged copy, a cell
too large for the memory limit, a copy someone else made. ``pools.metadata.table`` reads these."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

import duckdb

from pools.metadata.language import QueryError


class TableReadError(QueryError):
    """The table or its copy could not be read (not the query's fault): damaged, too large a cell
    for the memory limit, a file gone. One line, without "bad query"."""

    def __init__(self, message: str):
        ValueError.__init__(self, message)
        self.term, self.position = "", -1


#: what DuckDB says when a block of a database file fails its checksum or cannot be decoded
_DAMAGE_WORDS = ("corrupt", "checksum", "could not read", "failed to read", "serialization")


def damaged(err: BaseException) -> bool:
    if isinstance(err, (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException)):
        return True
    text = str(err).lower()
    return any(word in text for word in _DAMAGE_WORDS)


def check_owner(dest: str) -> None:
    """A copy someone else made, or that others may write, is not opened (a shared cache folder:
    another user could plant one); it is never removed either: it is not ours."""
    try:
        st = os.stat(dest)
    except OSError:
        return  # _open_index reports it
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise ValueError(f"the table copy {dest} is not yours or others may write it: not used "
                         "(remove it, or choose another folder for copies)")


def interruptible(call: Callable[[], Any], cursor) -> Any:
    """``call()``, a DuckDB execute or fetch on ``cursor``. DuckDB does not look at signals while it
    runs, so on the main thread (a command) the call runs on a helper thread while the main thread
    waits: Ctrl-C then interrupts the query at once instead of after it ends."""
    if threading.current_thread() is not threading.main_thread():
        return call()
    box: dict[str, Any] = {}
    finished = threading.Event()  # not Thread.join: a join a signal interrupted returns at once after

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err
        finally:
            finished.set()

    threading.Thread(target=run, daemon=True, name="duckdb-query").start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        cursor.interrupt()
        finished.wait(10.0)  # DuckDB stops within a vector or two
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
