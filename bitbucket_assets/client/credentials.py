"""The four ways to authenticate (docs/design.md, "Credentials"), and which one wins when several are set."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urljoin, urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from ..clock import Clock, SystemClock
from ..settings import DEFAULT_OAUTH_TOKEN_URL, Settings, load_settings
from .errors import AuthenticationError, MalformedResponseError
from .json_body import parse_json
from .origins import guarded_session, origin_of

Kind = Literal["api_token", "access_token", "oauth", "app_password", "org_api_key"]
NO_CREDENTIAL = (
    "No Bitbucket credential configured: set BITBUCKET_EMAIL and BITBUCKET_API_TOKEN (recommended), "
    "BITBUCKET_ACCESS_TOKEN, or BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET."
)
APP_PASSWORD_HINT = (
    "App passwords were removed by Atlassian on 2026-07-28: create an Atlassian API token with scopes and "
    "set BITBUCKET_EMAIL and BITBUCKET_API_TOKEN instead."
)


@dataclass(repr=False)
class Credentials:
    """A credential. `repr` and `str` never show the secret."""

    kind: Kind
    username: str = ""  # email (api_token), username (app_password) or client id (oauth)
    secret: str = field(default="")
    token_url: str = DEFAULT_OAUTH_TOKEN_URL

    def __repr__(self) -> str:
        return f"Credentials(kind={self.kind!r}, username={self.username!r}, secret=***)"

    __str__ = __repr__

    @classmethod
    def api_token(cls, email: str, token: str) -> Credentials:
        return cls("api_token", email, token)

    @classmethod
    def access_token(cls, token: str) -> Credentials:
        return cls("access_token", "", token)

    @classmethod
    def oauth(
        cls, client_id: str, client_secret: str, token_url: str = DEFAULT_OAUTH_TOKEN_URL
    ) -> Credentials:
        return cls("oauth", client_id, client_secret, token_url)

    @classmethod
    def app_password(cls, username: str, password: str) -> Credentials:
        return cls("app_password", username, password)

    @classmethod
    def org_api_key(cls, key: str) -> Credentials:
        """An Atlassian organization API key (admin.atlassian.com), sent as a Bearer to the Admin API."""
        return cls("org_api_key", "", key)

    def auth(self, session: requests.Session, timeout: float, clock: Clock | None = None) -> AuthBase:
        """How requests of `session` carry this credential. An OAuth consumer's secret goes only to its token
        endpoint, on a session of its own (`_OAuthClientCredentials`)."""
        if self.kind in ("api_token", "app_password"):
            return HTTPBasicAuth(self.username, self.secret)
        if self.kind in ("access_token", "org_api_key"):
            return _Bearer(lambda: self.secret)
        return _OAuthClientCredentials(self, timeout, clock or SystemClock())


def credentials_from_values(
    *,
    email: str | None = None,
    api_token: str | None = None,
    access_token: str | None = None,
    oauth_client_id: str | None = None,
    oauth_client_secret: str | None = None,
    oauth_token_url: str | None = None,
    username: str | None = None,
    app_password: str | None = None,
) -> Credentials:
    """The one place that decides which credential wins: API token, access token, OAuth consumer, app
    password."""
    if email and api_token:
        return Credentials.api_token(email, api_token)
    if access_token:
        return Credentials.access_token(access_token)
    if oauth_client_id and oauth_client_secret:
        return Credentials.oauth(
            oauth_client_id, oauth_client_secret, oauth_token_url or DEFAULT_OAUTH_TOKEN_URL
        )
    if username and app_password:
        return Credentials.app_password(username, app_password)
    raise AuthenticationError(NO_CREDENTIAL)


def credentials_from_settings(settings: Settings) -> Credentials:
    """The credential the settings name, in order of preference: API token, access token, OAuth consumer, app
    password."""
    return credentials_from_values(
        email=settings.bitbucket_email,
        api_token=settings.secret("bitbucket_api_token"),
        access_token=settings.secret("bitbucket_access_token"),
        oauth_client_id=settings.bitbucket_oauth_client_id,
        oauth_client_secret=settings.secret("bitbucket_oauth_client_secret"),
        oauth_token_url=settings.bitbucket_oauth_token_url,
        username=settings.bitbucket_username,
        app_password=settings.secret("bitbucket_app_password"),
    )


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials:
    """The credential from environment variables (`.env.example` names): the process's, or those of `env`."""
    return credentials_from_settings(load_settings() if env is None else load_settings(env))


class _Bearer(AuthBase):
    def __init__(self, token):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class _OAuthClientCredentials(_Bearer):
    """Client-credentials grant; the token is renewed a minute before it expires (or on a 401).

    The consumer's secret is sent to `BITBUCKET_OAUTH_TOKEN_URL` only, over a session that can reach nothing
    but that URL's origin and follows no redirect; the token it returns goes to the API origin only (the
    client's session)."""

    MARGIN = 60.0

    def __init__(self, creds: Credentials, timeout: float, clock: Clock):
        super().__init__(self._current)
        self.creds, self.timeout, self.clock = creds, timeout, clock
        origin = origin_of(creds.token_url)
        if origin is None:
            raise AuthenticationError(
                "BITBUCKET_OAUTH_TOKEN_URL is not an http(s) URL with a host", endpoint=_path(creds.token_url)
            )
        self.session = guarded_session(origin, max_retries=0)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _current(self) -> str:
        with self._lock:
            if self._token is None or self.clock.monotonic() >= self._expires - min(
                self.MARGIN, self._lifetime / 4
            ):
                self._fetch()
            return self._token

    def _fetch(self) -> None:
        endpoint = _path(self.creds.token_url)
        try:
            response = self.session.post(
                self.creds.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.creds.username, self.creds.secret),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise AuthenticationError(
                f"OAuth token endpoint unreachable: {type(exc).__name__}", endpoint=endpoint
            ) from None
        if 300 <= response.status_code < 400:
            target = origin_of(urljoin(self.creds.token_url, response.headers.get("Location") or ""))
            raise AuthenticationError(
                f"the OAuth token endpoint redirects (HTTP {response.status_code}) to "
                f"{target or 'no http(s) origin'}: not followed, the consumer's secret goes only to "
                "BITBUCKET_OAUTH_TOKEN_URL",
                endpoint=endpoint,
                status=response.status_code,
            )
        if response.status_code != 200:
            raise AuthenticationError(
                f"OAuth client-credentials grant refused (HTTP {response.status_code}): check "
                "BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET",
                endpoint=endpoint,
                status=response.status_code,
            )
        token, lifetime = _token_of(response)
        if token is None:
            raise MalformedResponseError(
                "the OAuth token endpoint answered without a usable `access_token`",
                endpoint=endpoint,
                status=response.status_code,
            )
        self._token, self._lifetime = token, lifetime
        self._expires = self.clock.monotonic() + self._lifetime

    _lifetime = 3600.0


# A bearer token as OAuth 2.0 defines it (RFC 6750 b64token): nothing a header could be split on.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _token_of(response: requests.Response) -> tuple[str | None, float]:
    """The access token and its lifetime in seconds from a token endpoint's answer; None when there is no
    usable token (not JSON, another shape, a token that is not a bearer token)."""
    try:
        body = parse_json(response)
    except ValueError:
        return None, 0.0
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not _BEARER_TOKEN.fullmatch(token):
        return None, 0.0
    lifetime = body.get("expires_in", 3600)
    valid = isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and 0 < lifetime < 1e9
    return token, float(lifetime) if valid else 3600.0


def _path(url: str) -> str:
    return urlsplit(url).path
