"""A pure-Python Bitbucket Cloud client: authentication, pagination, pacing, retries, typed errors.

No Dagster in here: extraction assets, provisioning and the CLI all build on it.
"""

from .client import BitbucketClient, CallStats
from .credentials import Credentials, credentials_from_env
from .errors import (
    AuthenticationError,
    BitbucketError,
    EndpointRemovedError,
    MalformedResponseError,
    MissingScopesError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitExhaustedError,
    ServerError,
)

__all__ = [
    "AuthenticationError",
    "BitbucketClient",
    "BitbucketError",
    "CallStats",
    "Credentials",
    "EndpointRemovedError",
    "MalformedResponseError",
    "MissingScopesError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitExhaustedError",
    "ServerError",
    "credentials_from_env",
]
