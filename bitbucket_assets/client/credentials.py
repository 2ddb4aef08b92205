"""The four ways to authenticate, chosen explicitly in code or from the environment (PRODUCT.md)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from .errors import AuthenticationError

Kind = Literal["api_token", "access_token", "oauth", "app_password"]
DEFAULT_API_URL = "https://api.bitbucket.org"
DEFAULT_OAUTH_TOKEN_URL = "https://bitbucket.org/site/oauth2/access_token"
NO_CREDENTIAL = (
    "No Bitbucket credential configured: set BITBUCKET_EMAIL and BITBUCKET_API_TOKEN (recommended), "
    "BITBUCKET_ACCESS_TOKEN, or BITBUCKET_OAUTH_CLIENT_ID and BITBUCKET_OAUTH_CLIENT_SECRET."
)
APP_PASSWORD_HINT = (
    "App passwords were removed by Atlassian on 2026-07-28: create an Atlassian API token with scopes and set "
    "BITBUCKET_EMAIL and BITBUCKET_API_TOKEN instead."
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
    def oauth(cls, client_id: str, client_secret: str, token_url: str = DEFAULT_OAUTH_TOKEN_URL) -> Credentials:
        return cls("oauth", client_id, client_secret, token_url)

    @classmethod
    def app_password(cls, username: str, password: str) -> Credentials:
        return cls("app_password", username, password)

    def auth(self, session: requests.Session, timeout: float) -> AuthBase:
        if self.kind in ("api_token", "app_password"):
            return HTTPBasicAuth(self.username, self.secret)
        if self.kind == "access_token":
            return _Bearer(lambda: self.secret)
        return _OAuthClientCredentials(self, session, timeout)


def credentials_from_env(env: dict[str, str] | None = None) -> Credentials:
    """Pick the credential from the environment, in PRODUCT.md's order of preference."""
    env = os.environ if env is None else env
    if env.get("BITBUCKET_EMAIL") and env.get("BITBUCKET_API_TOKEN"):
        return Credentials.api_token(env["BITBUCKET_EMAIL"], env["BITBUCKET_API_TOKEN"])
    if env.get("BITBUCKET_ACCESS_TOKEN"):
        return Credentials.access_token(env["BITBUCKET_ACCESS_TOKEN"])
    if env.get("BITBUCKET_OAUTH_CLIENT_ID") and env.get("BITBUCKET_OAUTH_CLIENT_SECRET"):
        return Credentials.oauth(
            env["BITBUCKET_OAUTH_CLIENT_ID"],
            env["BITBUCKET_OAUTH_CLIENT_SECRET"],
            env.get("BITBUCKET_OAUTH_TOKEN_URL") or DEFAULT_OAUTH_TOKEN_URL,
        )
    if env.get("BITBUCKET_USERNAME") and env.get("BITBUCKET_APP_PASSWORD"):
        return Credentials.app_password(env["BITBUCKET_USERNAME"], env["BITBUCKET_APP_PASSWORD"])
    raise AuthenticationError(NO_CREDENTIAL)


class _Bearer(AuthBase):
    def __init__(self, token):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class _OAuthClientCredentials(_Bearer):
    """Client-credentials grant; the token is renewed a minute before it expires (or on a 401)."""

    MARGIN = 60.0

    def __init__(self, creds: Credentials, session: requests.Session, timeout: float):
        super().__init__(self._current)
        self.creds, self.session, self.timeout = creds, session, timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _current(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires - min(self.MARGIN, self._lifetime / 4):
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
        self._expires = time.monotonic() + self._lifetime

    _lifetime = 3600.0
