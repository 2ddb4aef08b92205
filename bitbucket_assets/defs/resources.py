"""Every resource the definitions use, built from one `Settings` by one factory.

A resource's fields are named after the settings they hold (`requests_per_hour` holds
`bitbucket_requests_per_hour`), so `from_settings` copies them all and nothing is copied by hand. A secret the
process environment holds is passed as an `EnvVar`, so Dagster resolves it when the run starts and never
records
its value; one given in code (the demo's simulator token) is passed as it is.
"""

from __future__ import annotations

from typing import Any, Self

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import SecretStr

from ..client import BitbucketClient, Credentials, credentials_from_values
from ..client.admin_api import AtlassianAdminApi
from ..extraction.refresh import RefreshPolicy
from ..extraction.vanished import Breaker
from ..provisioning.approvals import ApproverPolicy
from ..provisioning.engine import ProvisioningPolicy
from ..service_key import ServiceKey
from ..settings import (
    DEFAULT_ADMIN_API_URL,
    DEFAULT_API_URL,
    DEFAULT_CHANGE_CONTROL_DAYS,
    DEFAULT_MAX_APPROVAL_AGE_DAYS,
    DEFAULT_MAX_CHANGES_PER_RUN,
    DEFAULT_MAX_VANISHED_SHARE,
    DEFAULT_OAUTH_TOKEN_URL,
    DEFAULT_PROTECTED_GROUPS,
    DEFAULT_RAW_SYNC_RETENTION,
    DEFAULT_REFRESH_MAX_AGE_DAYS,
    DEFAULT_REQUESTS_PER_HOUR,
    DEFAULT_SYNC_TARGET_HOURS,
    SECRET_VARIABLES,
    Settings,
    comma_list,
    environment_variable_holds,
)


class _FromSettings(dg.ConfigurableResource):
    """A resource whose every field `x` holds the setting `bitbucket_x`."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(**{name: _value(settings, f"bitbucket_{name}") for name in cls.model_fields})


def _value(settings: Settings, field: str) -> Any:
    value = getattr(settings, field)
    if not isinstance(value, SecretStr):
        return value
    secret, variable = value.get_secret_value(), SECRET_VARIABLES[field]
    return dg.EnvVar(variable) if environment_variable_holds(variable, secret) else secret


class BitbucketResource(_FromSettings):
    """Bitbucket Cloud credentials and client settings, and the Atlassian Admin API's for workspaces
    administered from admin.atlassian.com (docs/provisioning.md)."""

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
    requests_per_hour: float = DEFAULT_REQUESTS_PER_HOUR
    refresh_max_age_days: int = DEFAULT_REFRESH_MAX_AGE_DAYS
    sync_target_hours: float = DEFAULT_SYNC_TARGET_HOURS
    change_control_days: int = DEFAULT_CHANGE_CONTROL_DAYS
    # The optional second credential for change control (settings.py): a workspace access token and its
    # workspace.
    change_control_token: str | None = None
    change_control_workspace: str | None = None
    max_vanished_share: float = DEFAULT_MAX_VANISHED_SHARE  # the circuit breaker (extraction/vanished.py)
    admin_api_url: str = DEFAULT_ADMIN_API_URL
    admin_org_id: str | None = None
    admin_api_key: str | None = None
    admin_directory_id: str | None = None
    admin_managed_workspaces: str | None = None  # comma-separated slugs; None: detected from the snapshot

    def credentials(self) -> Credentials:
        return credentials_from_values(
            email=self.email,
            api_token=self.api_token,
            access_token=self.access_token,
            oauth_client_id=self.oauth_client_id,
            oauth_client_secret=self.oauth_client_secret,
            oauth_token_url=self.oauth_token_url,
            username=self.username,
            app_password=self.app_password,
        )

    def workspace_filter(self) -> list[str] | None:
        return comma_list(self.workspaces)

    def get_client(self) -> BitbucketClient:
        return BitbucketClient(self.credentials(), self.api_url, requests_per_hour=self.requests_per_hour)

    def get_change_control_client(self) -> BitbucketClient | None:
        """A client of its own (its own pacing buckets) for the change-control token, to the same API root."""
        if not self.change_control_token:
            return None
        return BitbucketClient(
            Credentials.access_token(self.change_control_token),
            self.api_url,
            requests_per_hour=self.requests_per_hour,
        )

    def get_admin_api(self) -> AtlassianAdminApi | None:
        """The organization's Admin API, when an organization id and API key are set."""
        if not (self.admin_org_id and self.admin_api_key):
            return None
        return AtlassianAdminApi.connect(
            self.admin_org_id,
            self.admin_api_key,
            self.admin_api_url,
            self.admin_directory_id,
            requests_per_hour=self.requests_per_hour,
        )

    def admin_managed(self) -> list[str] | None:
        return comma_list(self.admin_managed_workspaces)

    def refresh_policy(self, full: bool = False) -> RefreshPolicy:
        return RefreshPolicy(
            full, self.refresh_max_age_days, self.sync_target_hours, self.change_control_days
        )

    def breaker(self) -> Breaker:
        return Breaker(self.max_vanished_share)


class ProvisioningResource(_FromSettings):
    """Who may approve (the approver policy file), which groups are protected, how old an approval may be, the
    deployment's cap on changes per run (a run's config may lower or raise it for that run), and the key that
    signs the provisioning log's head."""

    approver_policy: str | None = None
    protected_groups: str = ",".join(DEFAULT_PROTECTED_GROUPS)
    max_approval_age_days: float = DEFAULT_MAX_APPROVAL_AGE_DAYS
    max_changes_per_run: int = DEFAULT_MAX_CHANGES_PER_RUN
    signing_key: str | None = None  # the private key file that signs the log's head (not its content)
    signing_public_key: str | None = None

    def approvals(self) -> ApproverPolicy:
        return ApproverPolicy.load(self.approver_policy)

    def service_key(self) -> ServiceKey:
        return ServiceKey.from_paths(self.signing_key, self.signing_public_key)

    def policy(self, max_changes_per_run: int | None = None) -> ProvisioningPolicy:
        cap = self.max_changes_per_run if max_changes_per_run is None else max_changes_per_run
        groups = tuple(comma_list(self.protected_groups) or ())
        return ProvisioningPolicy(self.max_approval_age_days, groups, cap)


class RetentionResource(_FromSettings):
    """How many complete raw snapshots the warehouse keeps (the history keeps everything)."""

    raw_sync_retention: int = DEFAULT_RAW_SYNC_RETENTION


def with_resources(settings: Settings, *parts: dg.Definitions, dbt: bool = True) -> dg.Definitions:
    """The domains' definitions merged, with every resource built from the settings (once: the domains
    define none, so the whole code location and a command's subset share these). `dbt=False` for a subset
    that runs no dbt (provisioning): see `build_resources`."""
    return dg.Definitions.merge(*parts, dg.Definitions(resources=build_resources(settings, dbt=dbt)))


def build_resources(settings: Settings, *, dbt: bool = True) -> dict[str, Any]:
    """Every resource, from the settings; without `dbt`, none that runs dbt: dagster-dbt, which the dbt
    resource needs, costs about 1.4 s of CPU to import, more than a provisioning command's own work."""
    settings.ensure_warehouse_directory()
    resources: dict[str, Any] = {
        "bitbucket": BitbucketResource.from_settings(settings),
        "provisioning": ProvisioningResource.from_settings(settings),
        "retention": RetentionResource.from_settings(settings),
        "duckdb": DuckDBResource(database=settings.duckdb_path),
    }
    if dbt:
        from .dbt_models.project import dbt_resource

        resources["dbt"] = dbt_resource()
    return resources
