"""Talking to the Hub: the client, its HTTP path, retries, the resolver budget, signed URLs, the cache.

* :mod:`~pools.transport.client`: :class:`HubClient`, one endpoint + token's worth of Hub access;
* :mod:`~pools.transport.http`: index and ranged GETs on urllib3 (redirects, deadlines);
* :mod:`~pools.transport.answers`: what an answer means (its error, whether its ETag checks out);
* :mod:`~pools.transport.retry`: :class:`RetryPolicy`, ``with_retries``, ``translate``;
* :mod:`~pools.transport.budget`: the resolver budget shared per endpoint and token;
* :mod:`~pools.transport.signed_urls`: an archive's signed CDN URL, kept and reused;
* :mod:`~pools.transport.cache`: small repo files (indexes) cached by endpoint, repo and commit.
"""

from pools.errors import (
    RETRY_STATUS,
    Cancelled,
    FileMissing,
    IndexTooLargeError,
    PlainNotFound,
    RangeIgnoredError,
    RateLimited,
    RedirectError,
    TransientError,
)
from pools.transport.client import MAX_INDEX_BYTES, NOT_FOUND, HubClient
from pools.transport.retry import RetryPolicy, translate, wait_visibly, with_retries
from pools.transport.signed_urls import StaleIndexError

__all__ = [
    "Cancelled", "TransientError", "RateLimited", "RetryPolicy", "HubClient", "translate", "with_retries",
    "wait_visibly", "NOT_FOUND", "FileMissing", "PlainNotFound", "RangeIgnoredError", "IndexTooLargeError",
    "RedirectError", "StaleIndexError", "MAX_INDEX_BYTES", "RETRY_STATUS",
]
