"""The pool engine: fetch single files out of indexed tar archives on a Hugging Face Hub.

The reference API (``pools.base``) is re-exported here, with the downloader, range expressions,
events and the engine's errors. Nothing here imports Textual.
"""

from pools import events
from pools.base import (
    ArchiveInfo,
    ArchiveTemplateDataPool,
    DataLocation,
    DataPool,
    FileUnrecognizableError,
    HfBasedDataPool,
    IncrementIDDataPool,
    InvalidResourceDataError,
    Preview,
    ResourceNotFoundError,
)
from pools.combined import CombinedLayoutDataPool
from pools.engine.downloader import Downloader, Job
from pools.errors import (
    AccessDeniedError,
    DestinationError,
    HubUnreachableError,
    IndexFormatError,
    PoolError,
    RangeError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransferError,
)
from pools.archive.index import ArchiveIndex, IndexEntry
from pools.archive.layout import archive_path, index_path, resource_id_of
from pools.ranges import IdList, IdRanges, parse_ids
from pools.engine.report import DownloadReport
from pools.transport import RetryPolicy

__all__ = [
    "DataLocation", "DataPool", "HfBasedDataPool", "IncrementIDDataPool",
    "InvalidResourceDataError", "FileUnrecognizableError", "ResourceNotFoundError",
    "ArchiveInfo", "ArchiveTemplateDataPool", "CombinedLayoutDataPool", "Preview", "Downloader", "Job", "DownloadReport", "RetryPolicy",
    "IdRanges", "IdList", "parse_ids", "ArchiveIndex", "IndexEntry", "archive_path", "index_path",
    "resource_id_of", "events",
    "PoolError", "RangeError", "AccessDeniedError", "HubUnreachableError", "RepoNotFoundError",
    "RevisionNotFoundError", "IndexFormatError", "DestinationError", "TransferError",
]
