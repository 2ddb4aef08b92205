"""A pure-Python Bitbucket Cloud client: authentication, pagination, pacing, retries, typed errors, and the
typed endpoints over it (`api.BitbucketApi`).

No Dagster in here: extraction assets, provisioning and the CLI all build on it.
"""

from .api import BitbucketApi, UnknownGroupError, UnknownUserError
from .client import BitbucketClient, CallStats
from .credentials import Credentials, credentials_from_env, credentials_from_settings, credentials_from_values
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

__all__ = [
    "AuthenticationError",
    "BitbucketApi",
    "BitbucketClient",
    "BitbucketError",
    "CallStats",
    "ConnectionFailedError",
    "Credentials",
    "EndpointNotFoundError",
    "EndpointRemovedError",
    "ForeignOriginError",
    "MalformedResponseError",
    "MissingScopesError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitExhaustedError",
    "ServerError",
    "UnknownGroupError",
    "UnknownUserError",
    "credentials_from_env",
    "credentials_from_settings",
    "credentials_from_values",
]
