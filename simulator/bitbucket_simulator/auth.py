"""Authentication and authorisation as Bitbucket Cloud does it in late 2026.

Scopes come from the official spec (`x-atlassian-oauth2-scopes` for API tokens, `security.oauth2` for
OAuth consumers and access tokens), read from the extract shipped in `openapi/`, so the simulator
cannot drift from what Atlassian documents. The 1.0 group endpoints are not in the spec; their
scopes are the ones the reference gives (`read:permission` / `write:permission`, classic `account` /
`account:write`).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

SPEC_EXTRACT = Path(__file__).parent / "openapi" / "bitbucket-relevant-endpoints.json"

# Classic scopes that imply others (Atlassian's OAuth narrative). Admin scopes imply no reads.
CLASSIC_IMPLIES = {
    "project": {"repository"},
    "pullrequest": {"repository"},
    "repository:write": {"repository"},
    "pullrequest:write": {"pullrequest", "repository:write", "repository"},
    "project:write": {"project", "repository"},
}

GROUPS_READ = {"api_token": [["read:permission:bitbucket"]], "classic": [["account"]]}
GROUPS_WRITE = {
    "api_token": [["read:permission:bitbucket", "write:permission:bitbucket"]],
    "classic": [["account:write"]],
}

APP_PASSWORD_REMOVED = (
    "App passwords were removed from Bitbucket Cloud on 2026-07-28. "
    "Use an Atlassian API token with scopes (Basic auth with your account email) instead."
)

ALL_API_TOKEN_SCOPES = frozenset(
    {
        "read:user:bitbucket",
        "read:workspace:bitbucket",
        "read:project:bitbucket",
        "read:repository:bitbucket",
        "read:pullrequest:bitbucket",
        "read:permission:bitbucket",
        "write:permission:bitbucket",
        "delete:permission:bitbucket",
        "admin:project:bitbucket",
        "admin:repository:bitbucket",
    }
)
ALL_CLASSIC_SCOPES = frozenset(
    {"account", "account:write", "project", "project:admin", "repository", "repository:admin", "pullrequest"}
)


@dataclass(frozen=True)
class OperationScopes:
    api_token: list[list[str]]
    classic: list[list[str]]


@cache
def spec_scopes() -> dict[tuple[str, str], OperationScopes]:
    """(METHOD, /2.0/path/{template}) -> the scopes the official spec requires."""
    data = json.loads(SPEC_EXTRACT.read_text(encoding="utf-8"))
    table = {}
    for op in data["operations"]:
        api = [entry["scopes"] for entry in op.get("api_token_scopes") or []]
        classic = [s for s in op.get("oauth2_classic_scopes") or []]
        table[(op["method"], op["path"])] = OperationScopes(api, classic)
    return table


@dataclass
class Credential:
    """Who is calling. Never holds the secret itself: only what the log and the checks need."""

    kind: str  # api_token | access_token | oauth | anonymous
    user_uuid: str | None
    scopes: frozenset[str]
    rate_key: str  # the rate-limit bucket owner: user, token, consumer or IP
    workspace: str | None = None  # access tokens belong to one workspace

    def expanded_scopes(self) -> set[str]:
        out = set(self.scopes)
        for scope in self.scopes:
            out |= CLASSIC_IMPLIES.get(scope, set())
        return out


class AuthError(Exception):
    def __init__(self, status: int, message: str, detail: object = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass
class CredentialStore:
    """The credentials the simulator accepts. Tests add their own with the `add_*` methods."""

    api_tokens: dict[tuple[str, str], tuple[str, frozenset[str]]] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, str, frozenset[str]]] = field(default_factory=dict)
    oauth_consumers: dict[str, tuple[str, str, frozenset[str]]] = field(default_factory=dict)
    oauth_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    app_passwords: dict[str, str] = field(default_factory=dict)
    oauth_token_lifetime: float = 3600.0

    def add_api_token(self, email: str, token: str, user_uuid: str, scopes=ALL_API_TOKEN_SCOPES) -> None:
        self.api_tokens[(email.lower(), token)] = (user_uuid, frozenset(scopes))

    def add_access_token(self, token: str, name: str, workspace: str, scopes=ALL_CLASSIC_SCOPES) -> None:
        self.access_tokens[token] = (name, workspace, frozenset(scopes))

    def add_oauth_consumer(
        self, client_id: str, secret: str, owner_uuid: str, scopes=ALL_CLASSIC_SCOPES
    ) -> None:
        self.oauth_consumers[client_id] = (secret, owner_uuid, frozenset(scopes))

    def add_app_password(self, username: str, password: str) -> None:
        self.app_passwords[username] = password

    def issue_oauth_token(self, authorization: str | None, form: dict[str, str]) -> dict:
        """The client-credentials grant of `POST /site/oauth2/access_token`."""
        client_id, secret = (
            _basic(authorization) if authorization else (form.get("client_id"), form.get("client_secret"))
        )
        consumer = self.oauth_consumers.get(client_id or "")
        if consumer is None or not secrets.compare_digest(consumer[0], secret or ""):
            raise AuthError(400, "invalid_client", "Invalid OAuth client credentials")
        if form.get("grant_type") != "client_credentials":
            raise AuthError(400, "unsupported_grant_type", "Only grant_type=client_credentials is simulated")
        token = secrets.token_urlsafe(24)
        self.oauth_tokens[token] = (client_id, time.monotonic() + self.oauth_token_lifetime)
        return {
            "access_token": token,
            "scopes": " ".join(sorted(consumer[2])),
            "expires_in": int(self.oauth_token_lifetime),
            "refresh_token": secrets.token_urlsafe(16),
            "token_type": "bearer",
            "state": "client_credentials",
        }

    def authenticate(self, authorization: str | None, client_ip: str) -> Credential:
        if not authorization:
            return Credential("anonymous", None, frozenset(), rate_key=f"ip:{client_ip}")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            username, password = _basic(authorization)
            key = (username.lower(), password)
            if key in self.api_tokens:
                user_uuid, scopes = self.api_tokens[key]
                return Credential("api_token", user_uuid, scopes, rate_key=f"user:{user_uuid}")
            if username in self.app_passwords or "@" not in username:
                raise AuthError(401, APP_PASSWORD_REMOVED)
            raise AuthError(401, "Invalid credentials: check the account email and the API token.")
        if scheme.lower() == "bearer":
            token = value.strip()
            if token in self.access_tokens:
                name, workspace, scopes = self.access_tokens[token]
                return Credential("access_token", None, scopes, rate_key=f"token:{name}", workspace=workspace)
            if token in self.oauth_tokens:
                client_id, expires = self.oauth_tokens[token]
                if time.monotonic() >= expires:
                    raise AuthError(
                        401, "Access token expired. Use your refresh token to obtain a new access token."
                    )
                _, owner, scopes = self.oauth_consumers[client_id]
                return Credential("oauth", owner, scopes, rate_key=f"consumer:{client_id}")
            raise AuthError(401, "Invalid or unknown access token.")
        raise AuthError(401, f"Unsupported authorization scheme {scheme!r}.")


def _basic(authorization: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(authorization.split(" ", 1)[1]).decode("utf-8")
    except (ValueError, IndexError) as exc:
        raise AuthError(401, "Malformed Basic authorization header.") from exc
    username, _, password = raw.partition(":")
    return username, password


def check_scopes(cred: Credential, needed: OperationScopes, permission_endpoint: bool, write: bool) -> None:
    """Raise the 403 Bitbucket gives when a credential may not call an operation."""
    if cred.kind == "access_token" and permission_endpoint:
        raise AuthError(
            403, "Access tokens cannot query or change repository, project or workspace permissions."
        )
    if cred.kind == "oauth" and permission_endpoint and write:
        raise AuthError(
            403,
            "Unsupported authentication method: OAuth cannot change permissions; use an API token.",
        )
    if cred.kind == "api_token":
        alternatives, granted = needed.api_token, set(cred.scopes)
    else:
        alternatives, granted = needed.classic, cred.expanded_scopes()
    if not alternatives or any(set(alt) <= granted for alt in alternatives):
        return
    raise AuthError(
        403,
        "Your credentials lack one or more required privilege scopes.",
        {"required": sorted(alternatives[0]), "granted": sorted(cred.scopes)},
    )
