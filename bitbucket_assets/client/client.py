"""`BitbucketClient`: one `requests.Session`, pacing, retries, pagination and typed errors."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from ..clock import Clock, SystemClock, require_real_clock
from ..settings import DEFAULT_API_URL, DEFAULT_REQUESTS_PER_HOUR, reject_credentials_in_url
from .credentials import APP_PASSWORD_HINT, Credentials, _OAuthClientCredentials
from .errors import (
    AuthenticationError,
    BitbucketError,
    ConnectionFailedError,
    EndpointNotFoundError,
    EndpointRemovedError,
    ForeignOriginError,
    MalformedResponseError,
    MissingScopesError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitExhaustedError,
    ServerError,
)
from .json_body import MAX_JSON_DEPTH, TooDeep, parse_json
from .origins import guarded_session, origin_of, require_origin
from .pacer import TokenBucket, WaitTimer

log = logging.getLogger(__name__)

# Path segments that name an endpoint (everything else is an identifier) for per-family call counts.
_LITERAL_SEGMENTS = {
    "1.0",
    "2.0",
    "user",
    "users",
    "workspaces",
    "repositories",
    "members",
    "permissions",
    "permission",
    "projects",
    "permissions-config",
    "groups",
    "default-reviewers",
    "group-privileges",
    "admin",
    "v2",
    "orgs",
    "directories",
    "memberships",
    "search",  # the Atlassian Admin API
    "branch-restrictions",  # change control
    "effective-branching-model",
    "override-settings",
    "deploy-keys",
}


def endpoint_family(path: str) -> str:
    """`/2.0/repositories/acme/api/permissions-config/users` ->
    `2.0/repositories/*/*/permissions-config/users`."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    return "/".join(p if p in _LITERAL_SEGMENTS else "*" for p in parts)


@dataclass
class CallStats:
    """What a client did: HTTP calls per endpoint family, retries, 429s, seconds spent pacing."""

    calls: Counter = field(default_factory=Counter)
    # (workspace, endpoint family) -> calls: what each workspace's stages cost (progress.py)
    by_workspace: Counter = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def calls_of(self, workspace: str, families) -> int:
        """Calls made for `workspace` to the endpoint families `families` accepts (a predicate)."""
        with self._lock:
            counts = self.by_workspace.items()
            return sum(n for (ws, family), n in counts if ws == workspace and families(family))

    def snapshot(self) -> tuple[int, int]:
        """(calls, 429s) so far, consistent with each other."""
        with self._lock:
            return sum(self.calls.values()), self.rate_limited

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.total,
            "calls_by_family": dict(sorted(self.calls.items())),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
        }


# A server that does not implement the call (or the HTTP version) will not on the next try either.
PERMANENT_5XX = (501, 505)
PAGE_LENGTH = 100  # the most Bitbucket serves per page of a 2.0 list
# The most pages one list is followed for when Bitbucket sends no `size` (10 million entries at 100 a page:
# beyond any list of a real organisation, and a stop for a `next` chain that never ends). A list with a `size`
# stops sooner: at the pages its size needs, with room for a list that grows while it is read.
MAX_PAGES = 100_000


class _Transient(Exception):
    """A failure worth retrying; `final` is what the caller sees once retries run out."""

    def __init__(self, final: BitbucketError, retry_after: float | None = None):
        super().__init__(str(final))
        self.final, self.retry_after = final, retry_after


class BitbucketClient:
    """A Bitbucket Cloud REST client.

    - every call has a timeout; 429, 5xx, dropped connections, timeouts and unparseable bodies are
      retried with exponential backoff and full jitter, honouring `Retry-After` when Bitbucket sends it;
    - calls are paced by a token bucket per rate-limit bucket (`/2.0/repositories/*` and the rest),
      `requests_per_hour` each, so a long sync never needs a 429;
    - lists are followed through `next` at `pagelen=100`, up to a page cap, and never twice through one link;
    - the credential goes only to the origin of `api_url`: a `next` link, a redirect or a checkpoint that
      points elsewhere is refused before anything is sent (`origins.py`);
    - errors are typed (`errors.py`) and name endpoint and workspace, never the credential;
    - every wait (pacing, backoff) is on `clock`, so a stopping run stops waiting at once.

    Paths are built by `api.BitbucketApi`, the typed layer over this client.
    """

    def __init__(
        self,
        credentials: Credentials,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 30.0,
        requests_per_hour: float = DEFAULT_REQUESTS_PER_HOUR,
        window_seconds: float = 3600.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        max_workers: int = 8,
        clock: Clock | None = None,
        rate_limit_backoff: float = 60.0,
        rate_limit_wait: float = 900.0,
        max_pages: int = MAX_PAGES,
    ):
        self.api_url = reject_credentials_in_url(api_url.rstrip("/"))
        origin = origin_of(self.api_url)
        if origin is None:
            raise ValueError(f"the API root {self.api_url!r} is not an http(s) URL with a host")
        self.origin = origin
        self.clock = clock or SystemClock()
        require_real_clock(self.clock, self.api_url)
        self.credentials = credentials
        self.timeout = timeout
        self.max_workers = max_workers
        self.max_pages = max_pages
        self.session = guarded_session(
            origin, pool_connections=max_workers, pool_maxsize=max_workers * 2, max_retries=0
        )
        self.session.headers["Accept"] = "application/json"
        self.session.auth = credentials.auth(self.session, timeout, self.clock)
        self.requests_per_hour = requests_per_hour
        self.pacing = WaitTimer(self.clock)  # wall-clock time spent waiting for either bucket
        self.buckets = {
            group: TokenBucket(requests_per_hour, per=window_seconds, clock=self.clock, timer=self.pacing)
            for group in ("repositories", "api")
        }
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, backoff_base, backoff_max
        # Bitbucket's 429s usually carry no Retry-After and its window is a rolling hour: wait minutes, not
        # seconds (doubling from `rate_limit_backoff`), at most `rate_limit_wait` seconds in all for one call.
        self.rate_limit_backoff, self.rate_limit_wait = rate_limit_backoff, rate_limit_wait
        self.stats = CallStats()

    # ---- public API ----

    def get(self, path: str, params: dict[str, Any] | None = None, *, workspace: str | None = None) -> Any:
        """GET a JSON document (`path` relative to the API root, or an absolute `next` URL)."""
        return self.request("GET", path, params=params, workspace=workspace).parsed

    def pages(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        workspace: str | None = None,
        resume_from: str | None = None,
    ) -> Iterator[tuple[list, str | None, int | None]]:
        """Every page of the 2.0 list at `path` as `(values, next, size)`, following `next` (opaque) until it
        is absent; `size` is the list's length when Bitbucket sends it (not every list does).

        `resume_from`: a `next` URL kept from an earlier run; the list continues from there. It, and every
        `next` link, must lead to this list on the configured origin, or nothing is sent. A list stops with
        `MalformedResponseError` at a `next` link it already followed, and past its page cap: the pages its
        `size` needs at its `pagelen` (with room for a list that grows meanwhile), else `max_pages`.
        """
        list_url = self.api_url + path
        if resume_from is None:
            url: str = list_url
            query: dict[str, Any] | None = {"pagelen": PAGE_LENGTH, **(params or {})}
        else:
            self._require_same_list(resume_from, list_url, "the checkpoint to resume from", workspace)
            url, query = resume_from, None
        requested = int((query or {}).get("pagelen") or PAGE_LENGTH)
        followed: set[str] = set()
        largest: int | None = None  # the largest `size` the list has claimed so far
        page = 1
        while True:
            body = self.request("GET", url, params=query, workspace=workspace).parsed
            values = body.get("values") if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise MalformedResponseError(
                    f"page {page} has no `values` list", endpoint=_path(list_url), workspace=workspace
                )
            size = _count(body.get("size"))
            largest = max(largest or 0, size) if size is not None else largest
            pagelen = _count(body.get("pagelen")) or len(values) or requested
            next_url = body.get("next")
            if next_url is not None:
                self._require_next(next_url, list_url, page, followed, workspace)
                cap = self._page_cap(largest, pagelen)
                if page >= cap:
                    claimed = (
                        f"it says it holds {largest} entries, {pagelen} a page"
                        if largest is not None
                        else "it sends no `size`"
                    )
                    raise MalformedResponseError(
                        f"the list did not end after {page} pages ({claimed}): stopped at the cap of {cap} "
                        "pages",
                        endpoint=_path(list_url),
                        workspace=workspace,
                    )
                followed.add(next_url)
            yield values, next_url, size
            if next_url is None:
                return
            url, query, page = next_url, None, page + 1

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, *, workspace: str | None = None
    ) -> Iterator:
        for values, _, _ in self.pages(path, params, workspace=workspace):
            yield from values

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        workspace: str | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        """One call with pacing and retries; returns the response when its status is in `ok`, with `attempts`
        (how many tries it took). `path` is relative to the API root, or an absolute URL of its origin."""
        absolute = path.startswith(("http://", "https://"))
        url = path if absolute else self.api_url + path
        require_origin(
            url, self.origin, "the URL" if absolute else "the path", endpoint=_path(url), workspace=workspace
        )
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self.clock.sleep,  # interruptible, and instant on a simulated clock
            reraise=True,
            before_sleep=self._count_retry,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._attempt(method, url, params, json_body, workspace, ok)
                    # How many tries it took: an "already so" answer to a retried write may be our own first
                    # try.
                    response.attempts = attempt.retry_state.attempt_number
                    return response
        except _Transient as exc:
            raise exc.final from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.session.close()

    def error(
        self, response: requests.Response, endpoint: str, workspace: str | None = None
    ) -> BitbucketError:
        """The typed error for a response a caller accepted from `request` but must refuse after reading
        it."""
        return self._error(response, endpoint, workspace)

    def interrupt(self) -> None:
        """End every wait of this client at once (the run is stopping)."""
        self.clock.interrupt()

    # ---- internals ----

    def _require_same_list(self, url: object, list_url: str, what: str, workspace: str | None) -> None:
        """`url` continues the list at `list_url`: same origin (else `ForeignOriginError`), same path."""
        require_origin(url, self.origin, what, endpoint=_path(list_url), workspace=workspace)
        if _normalised_path(url) != _normalised_path(list_url):
            raise MalformedResponseError(
                f"{what} leads to another list ({urlsplit(url).path}): refused",
                endpoint=_path(list_url),
                workspace=workspace,
            )

    def _require_next(
        self, next_url: object, list_url: str, page: int, followed: set[str], workspace: str | None
    ) -> None:
        what = f"the `next` link of page {page}"
        if not isinstance(next_url, str):
            raise MalformedResponseError(
                f"{what} is not a URL ({type(next_url).__name__})",
                endpoint=_path(list_url),
                workspace=workspace,
            )
        self._require_same_list(next_url, list_url, what, workspace)
        if next_url in followed:
            raise MalformedResponseError(
                f"{what} leads back to a page already read: the list would never end",
                endpoint=_path(list_url),
                workspace=workspace,
            )

    def _page_cap(self, size: int | None, pagelen: int) -> int:
        """How many pages a list may take: those its `size` needs, a tenth more (at least 10) for a list that
        grows while it is read; `max_pages` at most, and without a `size`."""
        if size is None:
            return self.max_pages
        needed = math.ceil(size / max(1, pagelen))
        return min(self.max_pages, needed + max(10, needed // 10))

    def _attempt(self, method, url, params, json_body, workspace, ok) -> requests.Response:
        endpoint = _path(url)
        self.buckets["repositories" if endpoint.startswith("/2.0/repositories") else "api"].acquire()
        family = endpoint_family(endpoint)
        with self.stats._lock:
            self.stats.calls[family] += 1
            self.stats.by_workspace[(workspace or "", family)] += 1
        try:
            response = self.session.request(
                method, url, params=params, json=json_body, timeout=self.timeout, allow_redirects=False
            )
            response.content  # noqa: B018 - read the whole body here so a cut connection is retried
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            host = urlsplit(url).netloc
            raise _Transient(
                ConnectionFailedError(
                    f"cannot reach {host}: {connection_failure(exc, self.timeout)} — check the URL "
                    f"(BITBUCKET_API_URL: {self.api_url}) and that {host} is reachable from this machine",
                    endpoint=endpoint,
                    workspace=workspace,
                )
            ) from None
        status = response.status_code
        if status in ok:
            # Parsed once here so that an unparseable body is retried like a dropped connection.
            readable = method in ("GET", "POST") and response.content  # POST: the Admin API's searches
            response.parsed = self._json(response, url, workspace) if readable else None
            return response
        if status == 429:
            with self.stats._lock:
                self.stats.rate_limited += 1
            retry_after = _retry_after(response)
            raise _Transient(
                RateLimitExhaustedError(
                    f"rate limit still exceeded after waiting {self.rate_limit_wait:g} s for it",
                    endpoint=endpoint,
                    status=429,
                    workspace=workspace,
                    code=_error_message(response)[2],
                ),
                retry_after,
            )
        if status >= 500 and status not in PERMANENT_5XX:
            with self.stats._lock:
                self.stats.server_errors += 1
            raise _Transient(
                ServerError(
                    f"Bitbucket answered HTTP {status}", endpoint=endpoint, status=status, workspace=workspace
                ),
                _retry_after(response),
            )
        if 300 <= status < 400:
            raise self._redirect(response, url, endpoint, workspace)
        if status == 401 and isinstance(self.session.auth, _OAuthClientCredentials):
            self.session.auth.invalidate()  # an expired OAuth token: fetch a new one and try again
            raise _Transient(self._error(response, endpoint, workspace))
        raise self._error(response, endpoint, workspace)

    def _redirect(
        self, response: requests.Response, url: str, endpoint: str, workspace: str | None
    ) -> BitbucketError:
        """Redirects are never followed: one to another origin would carry the credential there."""
        status, target = response.status_code, urljoin(url, response.headers.get("Location") or "")
        found = origin_of(target)
        if found != self.origin:
            where = str(found) if found else "no http(s) origin"
            return ForeignOriginError(
                f"HTTP {status} redirects to {where}, not to the configured origin {self.origin}: not "
                "followed, nothing was sent there",
                endpoint=endpoint,
                status=status,
                workspace=workspace,
                origin=str(found) if found else None,
            )
        return BitbucketError(
            f"HTTP {status} redirects to {urlsplit(target).path}: redirects are not followed",
            endpoint=endpoint,
            status=status,
            workspace=workspace,
        )

    def _error(self, response: requests.Response, endpoint: str, workspace: str | None) -> BitbucketError:
        status = response.status_code
        message, detail, code = _error_message(response)
        message = _scrub(message, response, self.credentials.secret)
        kw = {"endpoint": endpoint, "status": status, "workspace": workspace, "code": code}
        if status == 401:
            hint = {
                "app_password": APP_PASSWORD_HINT,
                "org_api_key": "check BITBUCKET_ADMIN_API_KEY (an organization API key from "
                "admin.atlassian.com) and that it belongs to BITBUCKET_ADMIN_ORG_ID",
            }.get(
                self.credentials.kind,
                "check the credential (an API token needs your Atlassian account email as the username)",
            )
            return AuthenticationError(f"authentication failed (HTTP 401): {message} — {hint}", **kw)
        if status == 403:
            if isinstance(detail, dict) and "required" in detail:
                return MissingScopesError(
                    "the credential lacks required scopes.",
                    required=_strings(detail.get("required")),
                    granted=_strings(detail.get("granted")),
                    **kw,
                )
            return PermissionDeniedError(f"permission denied (HTTP 403): {message}", **kw)
        if status == 404:
            body = _body_excerpt(response, self.credentials.secret)
            routing = _not_about_a_resource(response)
            if routing:
                return EndpointNotFoundError(
                    f"HTTP 404 about no resource: {routing}: {body}", body=body, **kw
                )
            return NotFoundError(
                f"not found, or private and not visible to this credential: {message}", body=body, **kw
            )
        if status == 410:
            return EndpointRemovedError(f"endpoint removed by Atlassian (HTTP 410): {message}", **kw)
        return BitbucketError(f"unexpected HTTP {status}: {message}", **kw)

    def _json(self, response: requests.Response, url: str, workspace: str | None) -> Any:
        try:
            return parse_json(response)
        except TooDeep:
            raise MalformedResponseError(
                f"the response is JSON nested deeper than {MAX_JSON_DEPTH} levels: not a document Bitbucket "
                "sends",
                endpoint=_path(url),
                status=response.status_code,
                workspace=workspace,
            ) from None
        except ValueError:
            query = urlsplit(url).query
            where = f" (page {query})" if query else ""
            raise _Transient(
                MalformedResponseError(
                    f"response{where} is not valid JSON (content-type "
                    f"{response.headers.get('content-type', '?')})",
                    endpoint=_path(url),
                    status=response.status_code,
                    workspace=workspace,
                )
            ) from None

    def _stop(self, state: RetryCallState) -> bool:
        """Rate limits are bounded by time waited (they clear as the window rolls); other failures by
        tries."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and isinstance(exc.final, RateLimitExhaustedError):
            return state.idle_for >= self.rate_limit_wait
        return state.attempt_number > self.max_retries

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and isinstance(exc.final, RateLimitExhaustedError):
            remaining = max(0.0, self.rate_limit_wait - state.idle_for)
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else self.rate_limit_backoff * 2 ** (state.attempt_number - 1)
            )
            wait = min(wait, remaining)
            log.warning(
                "rate limited by Bitbucket on %s (HTTP 429%s): waiting %.0f s for the window to roll "
                "(%.0f of %.0f s allowed for this call used)",
                exc.final.endpoint,
                "" if exc.retry_after is None else f", Retry-After {exc.retry_after:g}",
                wait,
                state.idle_for,
                self.rate_limit_wait,
            )
            return wait
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, 3600.0)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)  # exponential backoff, jittered

    def _count_retry(self, state: RetryCallState) -> None:
        with self.stats._lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and not isinstance(exc.final, RateLimitExhaustedError):
            # Whoever watches (a terminal, the run log) sees what the pause is for, not a silent hang. (A
            # rate-limit wait says so in `_wait`.)
            pause = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s; retry %d of %d in %.1f s", exc.final, state.attempt_number, self.max_retries, pause
            )


def _path(url: str) -> str:
    return urlsplit(url).path


def _normalised_path(url: str) -> str:
    """A URL's path as Bitbucket's `next` links may spell it: percent-decoded, without a trailing slash."""
    return unquote(urlsplit(url).path).rstrip("/").casefold()


def _count(value: Any) -> int | None:
    """A list's `size` or `pagelen` when it is a count (a bool, a negative number or a string is not)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _strings(value: Any) -> list[str]:
    """Scopes of a 403's `detail`: strings only, whatever the body holds."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def connection_failure(exc: Exception, timeout: float) -> str:
    """Why a request got no HTTP answer, in words (requests wraps urllib3's reason several levels deep)."""
    text = str(exc).lower()
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s (timed out)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (a proxy, or a certificate this machine does not trust?)"
    if "refused" in text:
        return "connection refused (nothing listens there?)"
    if any(marker in text for marker in ("name or service not known", "nodename nor servname", "resolution")):
        return "the host name does not resolve"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "reset" in text or "aborted" in text:
        return "the connection was cut during the answer"
    return f"the connection failed ({type(exc).__name__})"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# What Bitbucket's router answers for a path no API serves (quoted in public issue threads and recorded in
# public clients' fixtures; tests/fixtures/recorded/README.md).
NO_API_HERE = "There is no API hosted at this URL"
BODY_EXCERPT = 300  # characters of an error body quoted in an error


def _not_about_a_resource(response: requests.Response) -> str | None:
    """Why a 404 says nothing about the resource the path names, or None: Bitbucket's router saying no API is
    hosted at the URL, or a body that is not an error object Bitbucket (`error`) or the Atlassian Admin API
    (`errors`) sends, such as a proxy's page."""
    try:
        body = parse_json(response)
    except ValueError:  # not JSON, or nested too deep to use
        return "the body is not Bitbucket's error object (a proxy or gateway answered?)"
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "the body is not Bitbucket's error object (a proxy or gateway answered?)"
    if any(NO_API_HERE in str(error.get(key) or "") for key in ("message", "detail")):
        return "Bitbucket says no API is hosted at this URL (a wrong path, or an API that moved)"
    return None


def _body_excerpt(response: requests.Response, secret: str) -> str:
    """The start of a response body for an error message, credentials taken out (`_scrub`)."""
    text = _scrub(" ".join((response.text or "")[: BODY_EXCERPT * 2].split()), response, secret)
    return text[:BODY_EXCERPT] + ("…" if len(text) > BODY_EXCERPT else "")


def _scrub(text: str, response: requests.Response, secret: str) -> str:
    """`text` without the credential the request carried: a hostile proxy may echo the request's headers into
    an error body, and error messages reach logs."""
    secrets = {secret}
    header = (response.request.headers.get("Authorization", "") if response.request is not None else "") or ""
    scheme, _, value = header.partition(" ")
    secrets.add(value)
    if scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, ValueError):
            secrets.add(base64.b64decode(value).decode("utf-8", "replace").partition(":")[2])
    for item in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(item, "***")
    return text


def _error_message(response: requests.Response) -> tuple[str, Any, str | None]:
    """Message, detail and code of an error body: Bitbucket's `{"error": {"message", "detail"}}`, or the
    Atlassian Admin API's `{"errors": [{"code", "title", "detail"}]}`."""
    try:
        body = parse_json(response)
    except ValueError:  # not JSON, or nested too deep to use
        return (response.text[:200] or response.reason or "").strip(), None, None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = ": ".join(_text(first.get(k)) for k in ("title", "detail") if _text(first.get(k)))
        code = first.get("code")
        return text or str(response.reason), None, code if isinstance(code, str) else None
    error = body.get("error", {}) if isinstance(body, dict) else {}
    error = error if isinstance(error, dict) else {}
    return _text(error.get("message")) or str(response.reason), error.get("detail"), None


def _text(value: Any) -> str:
    """A message field of an error body: a string (at most 500 characters), or nothing."""
    return value[:500] if isinstance(value, str) else ""
