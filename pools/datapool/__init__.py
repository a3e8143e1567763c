"""``cheesechaser.datapool`` under this engine: replacing ``cheesechaser`` by ``pools`` in a script's
imports is the whole port. The reference API lives in :mod:`pools.base`; this package names it
where cheesechaser's scripts import it from."""

from pools.base import (
    DataLocation,
    DataPool,
    FileUnrecognizableError,
    HfBasedDataPool,
    IncrementIDDataPool,
    InvalidResourceDataError,
    ResourceNotFoundError,
    id_modulo_cut,
)

__all__ = [
    "DataLocation", "DataPool", "HfBasedDataPool", "IncrementIDDataPool", "InvalidResourceDataError",
    "FileUnrecognizableError", "ResourceNotFoundError", "id_modulo_cut",
]
