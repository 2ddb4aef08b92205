"""Dagster resources for Bitbucket and the DuckDB warehouse."""

from __future__ import annotations

import os

import dagster as dg

from ...client import AuthenticationError, BitbucketClient, Credentials
from ...client.credentials import DEFAULT_API_URL, DEFAULT_OAUTH_TOKEN_URL, NO_CREDENTIAL

DEFAULT_DUCKDB_PATH = "data/bitbucket_access.duckdb"


def duckdb_path() -> str:
    """`DUCKDB_PATH`, resolved the same way by Dagster, dbt and the CLI."""
    path = os.environ.get("DUCKDB_PATH") or DEFAULT_DUCKDB_PATH
    if not path.startswith("md:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


class BitbucketResource(dg.ConfigurableResource):
    """Bitbucket Cloud credentials and client settings. Secrets come from `EnvVar`s, never from config."""

    api_url: str = DEFAULT_API_URL
    email: str | None = None
    api_token: str | None = None
    access_token: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = None
    oauth_token_url: str = DEFAULT_OAUTH_TOKEN_URL
    username: str | None = None
    app_password: str | None = None
    workspaces: str | None = None  # comma-separated slugs or {uuid}s
    requests_per_hour: float = 900.0
    max_workers: int = 8
    timeout_seconds: float = 30.0

    def credentials(self) -> Credentials:
        if self.email and self.api_token:
            return Credentials.api_token(self.email, self.api_token)
        if self.access_token:
            return Credentials.access_token(self.access_token)
        if self.oauth_client_id and self.oauth_client_secret:
            return Credentials.oauth(self.oauth_client_id, self.oauth_client_secret, self.oauth_token_url)
        if self.username and self.app_password:
            return Credentials.app_password(self.username, self.app_password)
        raise AuthenticationError(NO_CREDENTIAL)

    def workspace_filter(self) -> list[str] | None:
        items = [w.strip() for w in (self.workspaces or "").split(",") if w.strip()]
        return items or None

    def get_client(self) -> BitbucketClient:
        return BitbucketClient(
            self.credentials(),
            self.api_url,
            requests_per_hour=self.requests_per_hour,
            max_workers=self.max_workers,
            timeout=self.timeout_seconds,
        )


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def bitbucket_resource_from_env() -> BitbucketResource:
    """The resource wired to the environment variables of PRODUCT.md (secrets as `EnvVar`s)."""
    settings = {
        "email": "BITBUCKET_EMAIL",
        "api_token": "BITBUCKET_API_TOKEN",
        "access_token": "BITBUCKET_ACCESS_TOKEN",
        "oauth_client_id": "BITBUCKET_OAUTH_CLIENT_ID",
        "oauth_client_secret": "BITBUCKET_OAUTH_CLIENT_SECRET",
        "username": "BITBUCKET_USERNAME",
        "app_password": "BITBUCKET_APP_PASSWORD",
        "workspaces": "BITBUCKET_WORKSPACES",
    }
    kwargs = {key: env for key, name in settings.items() if (env := _env(name)) is not None}
    return BitbucketResource(
        api_url=os.environ.get("BITBUCKET_API_URL") or DEFAULT_API_URL,
        oauth_token_url=os.environ.get("BITBUCKET_OAUTH_TOKEN_URL") or DEFAULT_OAUTH_TOKEN_URL,
        requests_per_hour=float(os.environ.get("BITBUCKET_REQUESTS_PER_HOUR") or 900),
        **kwargs,
    )
