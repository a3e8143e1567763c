"""Errors a user of the engine can meet, each with a one-line message that never holds a token.

The reference API's three exceptions (``InvalidResourceDataError``, ``ResourceNotFoundError``,
``FileUnrecognizableError``) keep their reference shapes; everything this engine adds derives from
``PoolError`` so a caller can catch "the engine said no" in one place.
"""

from __future__ import annotations


class InvalidResourceDataError(Exception):
    """Base exception for invalid resource data."""


class ResourceNotFoundError(InvalidResourceDataError):
    """The requested resource is in no archive of the pool."""


class FileUnrecognizableError(Exception):
    """A file name inside an archive maps to no resource id."""


class PoolError(Exception):
    """Base of the engine's own errors; ``str()`` is one line, safe to show a user."""


class RangeError(PoolError, ValueError):
    """A range expression such as ``"0-5, 7"`` could not be parsed."""


class RepoNotFoundError(PoolError):
    """The repository does not exist (or is private and the token gives no access)."""


class RevisionNotFoundError(PoolError):
    """The revision (branch, tag or commit) does not exist in the repository."""


class AccessDeniedError(PoolError):
    """The Hub refused access: gated repo, private repo, or a wrong or missing token."""


class HubUnreachableError(PoolError):
    """The Hub could not be reached, or kept failing after every retry."""


class IndexFormatError(PoolError):
    """An archive's index JSON is broken: not JSON, missing keys, or impossible offsets."""


class TransferError(PoolError):
    """A file could not be fetched or verified after every retry."""


class DestinationError(PoolError):
    """The destination folder cannot be created or written (permissions, full disk)."""


class IdTypeError(PoolError, TypeError):
    """An id given to the Python API is not an int (bools included) nor an ``(int, info)`` pair."""
