"""A dataset's metadata table, opened for the CLI and the TUI alike, and captions beside a job.

``open_repo_table`` finds the table (given, the catalogue's, or found in the repo) and opens it;
``caption_writer_for`` writes each image's tags beside it as the downloader's events come.
:mod:`pools.metadata` (DuckDB, pyarrow, numpy) is imported only when a table is used: every
command and the TUI import this module, most runs never open a table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from app.core.catalogue import find_preset
from pools.errors import TooLargeError

if TYPE_CHECKING:
    from pools.metadata import CaptionWriter

Progress = Callable[[int, "int | None"], None]


class TableUsageError(Exception):
    """A one-line usage error (bad query, no table, bad option): exit 2 for a command."""


def open_repo_table(client, repo: str, revision: str = "main", *, metadata: str | None = None,
                    columns: str | None = None, on_progress: Progress | None = None,
                    on_index: Progress | None = None, max_bytes: int | None = None):
    """The table for ``repo``: ``metadata`` (a path or ``hf://`` URL), else the catalogue's, else
    one found in the repo; ``columns`` maps other schemas (``"tags=tag_list,width=w"``).
    TableUsageError when there is none or it is bad.

    ``on_progress(done, total)`` hears how a Hub table's fetch goes, ``on_index(rows, total)`` how
    the one-off copy of a big table goes."""
    from pools import metadata as tables_lib  # lazy: start-up time (DuckDB), see the module's docstring

    preset = find_preset(repo)
    try:
        mapping = dict(preset.columns) if preset is not None and preset.columns else {}
        mapping.update(tables_lib.parse_mapping(columns))
        source = metadata or (preset.metadata if preset is not None else None)
        if source is None:
            found = tables_lib.find_repo_table(client, repo, revision)
            if found is None:
                raise TableUsageError(f"no metadata table found in {repo} (no metadata.parquet or meta/*.parquet): "
                                      f"give --metadata PATH or hf://datasets/OWNER/NAME/PATH")
            source = str(found)
        return tables_lib.open_table(source, client=client, columns=mapping, on_progress=on_progress, on_index=on_index,
                                     max_bytes=max_bytes)
    except (tables_lib.QueryError, tables_lib.MappingError, tables_lib.TableNotFoundError, ValueError,
            TooLargeError) as err:
        raise TableUsageError(str(err)) from None


def caption_writer_for(downloader, table, dst_dir: str, fmt: str = "txt") -> CaptionWriter:
    """A caption writer listening to ``downloader``'s events; ``bind()`` it to the job it serves.
    It stops listening by itself when that job ends."""
    from pools.metadata import CaptionWriter  # lazy: start-up time (DuckDB), see the module's docstring

    def detach(writer) -> None:
        downloader.remove_listener(writer.on_event)
    writer = CaptionWriter(table, dst_dir, fmt, bound=False, on_end=detach)
    downloader.add_listener(writer.on_event)
    return writer
