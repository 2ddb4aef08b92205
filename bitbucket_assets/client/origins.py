"""Where a credential may go: the origin (scheme, host, port) of the URL it was configured for, and nowhere
else.

Every URL a client is about to call (a path under its API root, a `next` link, a checkpoint kept from an
earlier run, the target of a redirect) is compared with the configured origin before anything is sent. The
comparison parses the URL as `requests` does when it opens the connection (`urllib.parse`), and
`OriginGuard`, the transport adapter of the client's session, compares the prepared request once more as it
leaves, so no parser difference and no code path around the check can send a credential elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import ForeignOriginError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port; a URL without an explicit port has its scheme's."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"


def origin_of(url: str) -> Origin | None:
    """The origin `requests` would connect to for `url`; None for anything that is not an http(s) URL with a
    host and a valid port."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port if parts.port is not None else DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return Origin(scheme, parts.hostname, port)


def require_origin(
    url: object, allowed: Origin, what: str, *, endpoint: str = "", workspace: str | None = None
):
    """Raise `ForeignOriginError` unless `url` is a URL of the `allowed` origin. `what` says where the URL
    came from (`the \\`next\\` link of page 3`, `the checkpoint of ...`); the message names both origins and
    never the URL's query (it may carry a cursor, never a secret, but is noise)."""
    found = origin_of(url) if isinstance(url, str) else None
    if found == allowed:
        return
    where = str(found) if found else "no http(s) origin"
    raise ForeignOriginError(
        f"{what} points to {where}, not to the configured origin {allowed}: refused, nothing was sent there",
        endpoint=endpoint,
        workspace=workspace,
        origin=str(found) if found else None,
    )


class OriginGuard(HTTPAdapter):
    """A transport adapter that sends a request only to `allowed`: the last check before the connection
    opens, whatever built the URL (a `next` link, a checkpoint, a redirect)."""

    def __init__(self, allowed: Origin, **kwargs):
        super().__init__(**kwargs)
        self.allowed = allowed

    def send(self, request: requests.PreparedRequest, *args, **kwargs) -> requests.Response:
        require_origin(request.url, self.allowed, "a request", endpoint=urlsplit(request.url or "").path)
        return super().send(request, *args, **kwargs)


def guarded_session(allowed: Origin, **adapter_options) -> requests.Session:
    """A session whose every request goes to `allowed` only (both schemes are mounted, so a URL of the other
    scheme is refused by the guard rather than sent by a default adapter)."""
    session = requests.Session()
    adapter = OriginGuard(allowed, **adapter_options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
