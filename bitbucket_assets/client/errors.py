"""Typed errors. Messages name the endpoint, the workspace and the page; never a credential."""

from __future__ import annotations


class BitbucketError(Exception):
    """Base class: `endpoint` is the path called (no query string, no secrets), `status` the HTTP status,
    `body` the start of the answer's body (credentials scrubbed) where an error is about what was answered."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        workspace: str | None = None,
        code: str | None = None,
        body: str = "",
    ):
        where = f" [{endpoint}" + (f", workspace {workspace}" if workspace else "") + "]" if endpoint else ""
        super().__init__(message + where)
        self.endpoint, self.status, self.workspace = endpoint, status, workspace
        self.code = code  # the Atlassian Admin API's error code (`ADMIN-403-5`, ...); Bitbucket sends none
        self.body = body


class AuthenticationError(BitbucketError):
    """401: the credential was refused."""


class MissingScopesError(BitbucketError):
    """403 with Bitbucket's privilege-scope body."""

    def __init__(self, message: str, *, required: list[str], granted: list[str], **kw):
        super().__init__(
            f"{message} Required scopes: {', '.join(required) or '?'}; granted: "
            f"{', '.join(granted) or 'none'}.",
            **kw,
        )
        self.required, self.granted = required, granted


class PermissionDeniedError(BitbucketError):
    """403 for another reason: not an admin, a credential kind that cannot do this, an org-managed
    workspace."""


class NotFoundError(BitbucketError):
    """404 in Bitbucket's error object: absent, or private and invisible to this credential (Bitbucket does
    not say which). Whether it is about the resource a caller named is the caller's question: a list that
    answers 404 is taken as "gone" only when a read of the resource itself answers 404 too
    (extraction/gone.py)."""


class EndpointNotFoundError(BitbucketError):
    """404 that says nothing about any resource: Bitbucket's router answering "There is no API hosted at this
    URL" (a wrong path, an API change), or a body that is not Bitbucket's error object (a proxy or gateway).
    Not a `NotFoundError`, so that nobody reads it as "absent"; `body` quotes what was answered."""


class EndpointRemovedError(BitbucketError):
    """410: Atlassian removed the endpoint (CHANGE-2770 and friends)."""


class RateLimitExhaustedError(BitbucketError):
    """429 after every retry."""


class ServerError(BitbucketError):
    """5xx or a dropped connection after every retry."""


class ForeignOriginError(BitbucketError):
    """A URL (a `next` link, a redirect, a stored checkpoint) that leaves the configured origin: refused
    before anything, the credential least of all, is sent there. `origin` is where it pointed."""

    def __init__(self, message: str, *, origin: str | None = None, **kw):
        super().__init__(message, **kw)
        self.origin = origin


class ConnectionFailedError(ServerError):
    """No HTTP answer at all after every retry: refused, unknown host, timed out, TLS refused, cut. The
    message names the host and the reason, and what to check."""


class MalformedResponseError(BitbucketError):
    """A body that is not the JSON Bitbucket documents (after retries), or lacks a required field."""
