"""Errors a user of the engine can meet, each with a one-line message that never holds a token.

The reference API's three exceptions (``InvalidResourceDataError``, ``ResourceNotFoundError``,
``FileUnrecognizableError``) keep their reference shapes; everything this engine adds derives from
``PoolError`` so a caller can catch "the engine said no" in one place.
"""

from __future__ import annotations

from huggingface_hub.errors import EntryNotFoundError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


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


class ResourceFailedError(PoolError):
    """One id whose files could not be read (a transfer that gave up, bytes that never matched
    their sha256, a name that cannot be used): the reason is the message."""


class TooLargeError(PoolError):
    """A file past the size allowed for it (a metadata table from a repo that is not what it says):
    never retried, nothing kept."""


class DestinationError(PoolError):
    """The destination folder cannot be created or written (permissions, full disk)."""


class IdTypeError(PoolError, TypeError):
    """An id given to the Python API is not an int (bools included) nor an ``(int, info)`` pair."""


class IndexTooLargeError(IndexFormatError):
    """An index past the size cap (after decoding): that archive fails, nothing is cached."""


class PlainNotFound(TransferError):
    """A 404 without ``X-Error-Code`` (a mirror, a static file server): missing here, not an I/O error."""


class RangeIgnoredError(TransferError):
    """The server answered a ranged GET at a large offset with the whole file."""


class RedirectError(TransferError):
    """A redirect loop, too many hops, or a redirect to something that is not http(s)."""


class FileMissing(EntryNotFoundError):
    """The Hub says the file is not in the repo at that commit (``X-Error-Code: EntryNotFound``)."""


# Not for users: the transport's signals to the stages that called it.

class Cancelled(Exception):
    """The job was cancelled while a request was under way or waiting to retry."""


class TransientError(Exception):
    """A failure worth another try: a 5xx, a 429, a dropped connection, a short or altered body."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """A 429: wait ``retry_after`` seconds and ask again; never counted as a failed attempt."""


def error_for_status(status: int, what: str, code: str | None = None,
                     retry_after: float | None = None) -> BaseException | None:
    """The engine's error for an HTTP answer: ``code`` is the Hub's ``X-Error-Code`` if it sent
    one. None for a success, and for a 404 the caller must tell apart itself (``code`` None and
    ``what`` a file: see :class:`PlainNotFound`). The one place a status becomes an error."""
    if status < 400 and code is None:
        return None
    if code == "RepoNotFound":
        if status == 401:
            return AccessDeniedError(f"access denied: {what} is private or does not exist; give a token that can read it")
        return RepoNotFoundError(f"repository not found: {what} (or private, and the token has no access)")
    if code == "GatedRepo":
        return AccessDeniedError(f"access denied: {what} is gated; accept its terms and use a token of that account")
    if code == "RevisionNotFound":
        return RevisionNotFoundError(f"revision not found in {what}")
    if code == "EntryNotFound":
        return FileMissing(f"{what} is not in the repository")
    if status in (401, 403):
        return AccessDeniedError(f"access denied to {what}: the token is invalid or lacks permission (HTTP {status})")
    if status == 429:
        return RateLimited(f"HTTP 429 (rate limited) for {what}", retry_after)
    if status in RETRY_STATUS:
        return TransientError(f"HTTP {status} from the Hub for {what}")
    if status == 404:
        return None
    return HubUnreachableError(f"the Hub answered HTTP {status} for {what}")


def job_error(job, report) -> Exception:
    """The exception that says why a whole job failed, with its report attached."""
    cause = job.exception
    if isinstance(cause, IdTypeError):
        err: Exception = IdTypeError(str(cause))
    elif isinstance(cause, PoolError):
        err = type(cause)(report.error)
    else:
        err = HubUnreachableError(report.error or "the job failed")
    err.report = report  # type: ignore[attr-defined]
    return err


_NETWORK_WORDS = (  # what a Python network exception means, in a user's words (first match wins)
    (("NameResolution", "gaierror", "getaddrinfo"), "the host name does not resolve"),
    (("ConnectTimeout",), "the connection timed out"),
    (("NewConnection", "ConnectError", "ConnectionRefused", "ConnectionError"), "cannot connect (refused or unreachable)"),
    (("ReadTimeout", "TimeoutException", "Timeout"), "no answer in time"),
    (("SSLError", "SSL"), "the TLS handshake failed"),
    (("RemoteDisconnected", "ProtocolError", "RemoteProtocol", "ConnectionReset", "BrokenPipe"),
     "the connection was closed"),
)


def network_words(name: str, default: str | None = "a network error") -> str | None:
    """``NewConnectionError`` -> "cannot connect (refused or unreachable)": no Python names for
    users; ``default`` for a name that is no network failure."""
    for keys, words in _NETWORK_WORDS:
        if any(k in name for k in keys):
            return words
    return default
