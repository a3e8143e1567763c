"""Choose images by what they show: metadata tables and the booru query language, on DuckDB.

::

    from pools.metadata import open_table
    table = open_table("hf://datasets/demo/booru-mini/metadata.parquet", client=pool.client)
    table.count("cat -comic rating:g,s score:>=10")
    ids = table.ids("cat rating:g", limit=1000)      # lazy, ascending; len() is a count query
    downloader.submit(pool, ids, "out")

Nothing here imports Textual.
"""

from pools.metadata.captions import CAPTION_FORMATS, CaptionWriter, caption_text
from pools.metadata.faults import TableReadError
from pools.metadata.columns import Columns, MappingError, parse_mapping, resolve_columns
from pools.metadata.language import Compiled, QueryError, compile_query
from pools.metadata.source import (HubTable, TableNotFoundError, download_file, fetch_hub_table, find_repo_table,
                     open_table, parse_table_url)
from pools.metadata.sqlguard import check_where_sql
from pools.metadata.matches import MatchingIds
from pools.metadata.table import MetadataTable, Row, format_of
from pools.metadata.tagindex import IndexBuildCancelled, TagIndex

__all__ = [
    "open_table", "MetadataTable", "MatchingIds", "Row", "QueryError", "TableReadError", "compile_query", "Compiled",
    "check_where_sql", "Columns", "MappingError", "parse_mapping", "resolve_columns", "HubTable",
    "TableNotFoundError", "parse_table_url", "fetch_hub_table", "find_repo_table", "download_file",
    "CaptionWriter", "caption_text", "CAPTION_FORMATS", "format_of", "IndexBuildCancelled", "TagIndex",
]
