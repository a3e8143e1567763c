"""Signed, expiring CDN URLs and opaque ETags for the loopback Hub.

The real Hub answers ``resolve`` of an LFS file with a ``302`` to a CDN URL carrying a signed
query (``X-Amz-Expires``, ``Expires``, ``Signature``...). :class:`UrlSigner` makes and checks such
URLs for the loopback CDN port: ``Signature`` is an HMAC-SHA256, under a secret drawn once per
process, over the CDN path and the expiry time, so a URL cannot be forged, edited or used after it
expires. ``opaque_etag`` is what a mirror sends instead of a content hash: 40 hex digits that
identify one version of a file but are not its git blob sha1.

Stdlib only; no Textual.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from typing import Callable, Mapping
from urllib.parse import quote, urlencode

__all__ = ["UrlSigner", "SignatureProblem", "opaque_etag", "SECRET"]

SECRET = secrets.token_bytes(32)  # one per process: signed URLs never outlive their server's process


class SignatureProblem(Exception):
    """Why a signed URL is refused (the CDN answers 403 with this message)."""


class UrlSigner:
    """Signs CDN paths for ``ttl`` seconds and checks them, reading time from ``clock``."""

    def __init__(self, ttl: float = 3600.0, clock: Callable[[], float] = time.time, secret: bytes = SECRET):
        if not ttl > 0:
            raise ValueError("the CDN URL lifetime must be more than 0 seconds")
        self.ttl = float(ttl)
        self.clock = clock
        self._secret = secret

    def _mac(self, path: str, expires: int) -> str:
        msg = f"{path}\n{expires}".encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, path: str) -> str:
        """The signed query (without ``?``) for the unquoted CDN ``path``."""
        now = self.clock()
        expires = math.ceil(now + self.ttl)
        return urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": "loopback/cdn",
                "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
                "X-Amz-Expires": str(math.ceil(self.ttl)),
                "X-Amz-SignedHeaders": "host",
                "Expires": str(expires),
                "Key-Pair-Id": "loopback",
                "Signature": self._mac(path, expires),
            }
        )

    def url(self, base: str, path: str) -> str:
        """``base`` + the quoted ``path`` + its signed query."""
        return f"{base}{quote(path, safe='/')}?{self.sign(path)}"

    def check(self, path: str, params: Mapping[str, list[str]]) -> None:
        """Raise :class:`SignatureProblem` unless ``params`` hold a valid, unexpired signature of ``path``."""
        try:
            expires_s = params["Expires"][-1]
            signature = params["Signature"][-1]
        except (KeyError, IndexError):
            raise SignatureProblem("Query-string authentication requires the Signature and Expires parameters")
        if not (expires_s.isascii() and expires_s.isdigit() and len(expires_s) <= 12):
            raise SignatureProblem("Invalid Expires parameter")
        expires = int(expires_s)
        if not hmac.compare_digest(self._mac(path, expires), signature):
            raise SignatureProblem("The request signature we calculated does not match the signature you provided")
        if self.clock() > expires:
            raise SignatureProblem("Request has expired")


def opaque_etag(secret: bytes, *parts: object) -> str:
    """40 hex digits naming one version of a file, unrelated to its bytes (what a mirror sends)."""
    msg = "\0".join(str(p) for p in parts).encode("utf-8", "surrogateescape")
    return hmac.new(secret, b"opaque\0" + msg, hashlib.sha1).hexdigest()
