"""The four ways to authenticate (docs/design.md, "Credentials"), and which one wins when several are set."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from ..clock import Clock, SystemClock
from ..settings import DEFAULT_OAUTH_TOKEN_URL, Settings, load_settings
from .errors import AuthenticationError

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
        if self.kind in ("api_token", "app_password"):
            return HTTPBasicAuth(self.username, self.secret)
        if self.kind in ("access_token", "org_api_key"):
            return _Bearer(lambda: self.secret)
        return _OAuthClientCredentials(self, session, timeout, clock or SystemClock())


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
    """Client-credentials grant; the token is renewed a minute before it expires (or on a 401)."""

    MARGIN = 60.0

    def __init__(self, creds: Credentials, session: requests.Session, timeout: float, clock: Clock):
        super().__init__(self._current)
        self.creds, self.session, self.timeout, self.clock = creds, session, timeout, clock
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
        try:
            response = self.session.post(
                self.creds.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.creds.username, self.creds.secret),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise AuthenticationError(
                f"OAuth token endpoint unreachable: {type(exc).__name__}", endpoint=self.creds.token_url
            ) from None
        if response.status_code != 200:
            raise AuthenticationError(
                f"OAuth client-credentials grant refused (HTTP {response.status_code}): check "
                "BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET",
                endpoint=self.creds.token_url,
                status=response.status_code,
            )
        body = response.json()
        self._token = body["access_token"]
        self._lifetime = float(body.get("expires_in", 3600))
        self._expires = self.clock.monotonic() + self._lifetime

    _lifetime = 3600.0
