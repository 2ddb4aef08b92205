"""The Bitbucket resource: credentials and client settings. Secrets arrive as `EnvVar`s, never as config values."""

from __future__ import annotations

import dagster as dg

from ...client import BitbucketClient, Credentials, credentials_from_values
from ...client.admin_api import DEFAULT_ADMIN_API_URL, AtlassianAdminApi
from ...client.credentials import DEFAULT_API_URL, DEFAULT_OAUTH_TOKEN_URL
from ...extraction.refresh import RefreshPolicy
from ...settings import SECRET_VARIABLES, Settings, comma_list, environment_variable_holds


class BitbucketResource(dg.ConfigurableResource):
    """Bitbucket Cloud credentials and client settings."""

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
    refresh_max_age_days: int = 7  # N: an incremental sync re-reads every repository's lists at least every N days
    sync_target_hours: float = 12.0  # past this, workspaces read their lists instead of the effective list
    max_workers: int = 8
    timeout_seconds: float = 30.0
    # The Atlassian Admin API, for workspaces administered from admin.atlassian.com (docs/provisioning.md).
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
        return BitbucketClient(
            self.credentials(),
            self.api_url,
            requests_per_hour=self.requests_per_hour,
            max_workers=self.max_workers,
            timeout=self.timeout_seconds,
        )

    def get_admin_api(self) -> AtlassianAdminApi | None:
        """The organization's Admin API, when an organization id and API key are set."""
        if not (self.admin_org_id and self.admin_api_key):
            return None
        return AtlassianAdminApi.connect(
            self.admin_org_id, self.admin_api_key, self.admin_api_url, self.admin_directory_id,
            requests_per_hour=self.requests_per_hour, max_workers=self.max_workers, timeout=self.timeout_seconds,
        )  # fmt: skip

    def admin_managed(self) -> list[str] | None:
        return comma_list(self.admin_managed_workspaces)

    def refresh_policy(self, full: bool = False) -> RefreshPolicy:
        return RefreshPolicy(full=full, max_age_days=self.refresh_max_age_days, target_hours=self.sync_target_hours)


def bitbucket_resource(settings: Settings) -> BitbucketResource:
    """The resource for these settings. A secret the process environment holds is passed as an `EnvVar`, so
    Dagster resolves it when the run starts and never records its value; one given in code (the demo's
    simulator token) is passed as it is."""
    secrets = {}
    for field, variable in SECRET_VARIABLES.items():
        secret = getattr(settings, f"bitbucket_{field}")
        if secret is not None:
            value = secret.get_secret_value()
            secrets[field] = dg.EnvVar(variable) if environment_variable_holds(variable, value) else value
    return BitbucketResource(
        api_url=settings.bitbucket_api_url,
        email=settings.bitbucket_email,
        oauth_client_id=settings.bitbucket_oauth_client_id,
        oauth_token_url=settings.bitbucket_oauth_token_url,
        username=settings.bitbucket_username,
        workspaces=settings.bitbucket_workspaces,
        requests_per_hour=settings.bitbucket_requests_per_hour,
        refresh_max_age_days=settings.bitbucket_refresh_max_age_days,
        sync_target_hours=settings.bitbucket_sync_target_hours,
        admin_api_url=settings.bitbucket_admin_api_url,
        admin_org_id=settings.bitbucket_admin_org_id,
        admin_directory_id=settings.bitbucket_admin_directory_id,
        admin_managed_workspaces=settings.bitbucket_admin_managed_workspaces,
        **secrets,
    )
