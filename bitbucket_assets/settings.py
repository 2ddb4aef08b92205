"""Every setting the project reads, in one place: the environment variables of `.env.example`, read once.

This is the only module that reads the process environment. Everything else receives a `Settings`
(or the Dagster resources built from one, see `defs/resources.py`). Secrets are `SecretStr`: their
`repr` and `str` are masked, and Dagster receives them as `EnvVar`s, never as values in run config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every default the project has, written once. `Settings` uses them, and so do the library's keyword defaults
# (the client's pacing, the refresh policy, provisioning's policy) and the Dagster resources built from it.
DEFAULT_API_URL = "https://api.bitbucket.org"
DEFAULT_OAUTH_TOKEN_URL = "https://bitbucket.org/site/oauth2/access_token"
DEFAULT_ADMIN_API_URL = "https://api.atlassian.com"
# Bitbucket allows about 1,000 calls an hour per rate-limit bucket: pace safely under it.
DEFAULT_REQUESTS_PER_HOUR = 900.0
DEFAULT_REFRESH_MAX_AGE_DAYS = 7
DEFAULT_SYNC_TARGET_HOURS = 12.0
# Change control (branch restrictions, branching model, override settings, deploy keys: four calls per
# repository) is read for 1/N of the repositories a day, so every repository's is at most N days old. 21 keeps
# every day of `large` after the first sync under 12 hours with one credential over 30 days (11.2-11.7 h with
# the plan per credential and due reads held to 1.25 shares); 16 is the shortest that fits its first-pass
# days, with 0.2 h to spare (docs/benchmarks.md).
DEFAULT_CHANGE_CONTROL_DAYS = 21
DEFAULT_RAW_SYNC_RETENTION = 30
DEFAULT_SYNC_STALE_HOURS = 26.0
# The circuit breaker (extraction/vanished.py): a sync in which more than this share of a workspace's
# repositories, projects, members or groups vanished since its last observation, and at least
# VANISHED_MIN_COUNT of them (or all of them), is held back as `suspect` instead of published. No
# organisation loses a fifth of one of them in a day; a wrong answer (a proxy, an API change) does.
DEFAULT_MAX_VANISHED_SHARE = 0.2
VANISHED_MIN_COUNT = 5
DEFAULT_MAX_CHANGES_PER_RUN = 50
DEFAULT_MAX_APPROVAL_AGE_DAYS = 30.0
DEFAULT_PROTECTED_GROUPS = ("administrators",)
# An access-review campaign takes decisions until this many days after its export (`review export --due`).
DEFAULT_REVIEW_DUE_DAYS = 30
# A review file with more rows than this is refused before its rows are read (a workbook of 1,000 users by
# 250 repositories holds 250,000).
DEFAULT_REVIEW_MAX_ROWS = 500_000
# Relative to the directory the command runs in; resolved to an absolute path when read, so Dagster, dbt
# (which runs in dbt_project/) and every reader open the same file.
DEFAULT_DUCKDB_PATH = "data/bitbucket_access.duckdb"

# Which variable holds each secret: Dagster resources reference them by name (`EnvVar`).
SECRET_VARIABLES = {
    "bitbucket_api_token": "BITBUCKET_API_TOKEN",
    "bitbucket_access_token": "BITBUCKET_ACCESS_TOKEN",
    "bitbucket_oauth_client_secret": "BITBUCKET_OAUTH_CLIENT_SECRET",
    "bitbucket_app_password": "BITBUCKET_APP_PASSWORD",
    "bitbucket_admin_api_key": "BITBUCKET_ADMIN_API_KEY",
    "bitbucket_change_control_token": "BITBUCKET_CHANGE_CONTROL_TOKEN",
}


class Settings(BaseSettings):
    """The project's configuration. Field `x` is read from the variable `X` (`BITBUCKET_...`,
    `DUCKDB_PATH`)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    # Bitbucket: API root (the client appends /2.0/... and /1.0/...) and one of four credentials.
    bitbucket_api_url: str = DEFAULT_API_URL
    bitbucket_email: str | None = None
    bitbucket_api_token: SecretStr | None = None
    bitbucket_access_token: SecretStr | None = None
    bitbucket_oauth_client_id: str | None = None
    bitbucket_oauth_client_secret: SecretStr | None = None
    bitbucket_oauth_token_url: str = DEFAULT_OAUTH_TOKEN_URL
    bitbucket_username: str | None = None
    bitbucket_app_password: SecretStr | None = None
    bitbucket_workspaces: str | None = None  # comma-separated slugs or {uuid}s; None: every visible workspace
    bitbucket_requests_per_hour: float = Field(DEFAULT_REQUESTS_PER_HOUR, gt=0)
    # An incremental sync reads a repository's permission lists when it is new, its effective access changed,
    # or its lists are this many days old (a rolling share each day); the rest are carried forward. `sync
    # --full` reads every list.
    bitbucket_refresh_max_age_days: int = Field(DEFAULT_REFRESH_MAX_AGE_DAYS, ge=1)
    # The hours a daily sync should fit in: past them (estimated from the last sync), workspaces read every
    # repository's lists (one rate-limit bucket) instead of Bitbucket's effective list (the other).
    bitbucket_sync_target_hours: float = Field(DEFAULT_SYNC_TARGET_HOURS, gt=0)
    # Change control is read on a rolling schedule: about 1/N of the repositories a day, each at most N days
    # old once the first pass (spread over N days) is through (due reads take at most 1.25 shares a day: the
    # rest wait a day); `sync --full` reads every repository's.
    bitbucket_change_control_days: int = Field(DEFAULT_CHANGE_CONTROL_DAYS, ge=1)
    # An optional second credential for change control: a workspace access token (Bearer; scopes
    # `repository:admin`) of BITBUCKET_CHANGE_CONTROL_WORKSPACE, whose rate limit is its own. It reads that
    # workspace's branch restrictions, effective branching models and override settings beside the main
    # credential; deploy keys stay on the main credential (the spec lists only API tokens for them). Sent only
    # to BITBUCKET_API_URL's origin, like the main credential.
    bitbucket_change_control_token: SecretStr | None = None
    bitbucket_change_control_workspace: str | None = None  # the token's workspace (slug)
    # The circuit breaker: past this share of a workspace's repositories, projects, members or groups
    # vanishing in one sync (and at least VANISHED_MIN_COUNT of them), the snapshot is held back as `suspect`;
    # `sync --accept-vanished` publishes it when the change is real.
    bitbucket_max_vanished_share: float = Field(DEFAULT_MAX_VANISHED_SHARE, gt=0, le=1)

    # Schedules.
    bitbucket_sync_cron: str = "0 5 * * *"
    bitbucket_sync_timezone: str = "UTC"
    bitbucket_jit_expiry_cron: str = "*/15 * * * *"

    # Provisioning: who may approve (a YAML file kept outside the warehouse; docs/provisioning.md), which
    # groups are changed only with `allow_protected`, how old an approval may be, and how many changes one run
    # may make (`provision --max-changes` and the job's run config override it for one run).
    bitbucket_approver_policy: str | None = None
    bitbucket_protected_groups: str = ",".join(DEFAULT_PROTECTED_GROUPS)  # comma-separated slugs
    bitbucket_max_approval_age_days: float = Field(DEFAULT_MAX_APPROVAL_AGE_DAYS, gt=0)
    bitbucket_max_changes_per_run: int = Field(DEFAULT_MAX_CHANGES_PER_RUN, ge=0)

    # Access reviews: how long a campaign takes decisions after its export, and the most rows a review file
    # may hold (checked before its rows are read).
    bitbucket_review_due_days: int = Field(DEFAULT_REVIEW_DUE_DAYS, ge=1)
    bitbucket_review_max_rows: int = Field(DEFAULT_REVIEW_MAX_ROWS, ge=1)
    # The service's own signing key (an OpenSSH private key file, kept outside the warehouse like the API
    # token): it signs the provisioning log's head and every evidence pack's manifest. Verifiers check them
    # with the public key (`key.pub`, or allowed_signers lines for the principal `bitbucket-access`); default:
    # the public half of the signing key (service_key.py).
    bitbucket_signing_key: str | None = None
    bitbucket_signing_public_key: str | None = None

    # Workspaces administered from admin.atlassian.com: their groups are organization groups, changed (and
    # their members read) through the Atlassian Admin API with an organization API key (docs/provisioning.md).
    bitbucket_admin_org_id: str | None = None
    bitbucket_admin_api_key: SecretStr | None = None
    bitbucket_admin_api_url: str = DEFAULT_ADMIN_API_URL
    bitbucket_admin_directory_id: str | None = None  # None: the directory holding the group's name
    # Comma-separated slugs; None: detected (Bitbucket omits `added_on` for members of such workspaces).
    bitbucket_admin_managed_workspaces: str | None = None

    # The warehouse.
    duckdb_path: str = DEFAULT_DUCKDB_PATH
    bitbucket_raw_sync_retention: int = Field(DEFAULT_RAW_SYNC_RETENTION, ge=1)
    bitbucket_dashboard_db: str | None = None  # the file the dashboard reads; default: the read copy
    bitbucket_dashboard_sign_in: bool = False  # require OIDC sign-in (Streamlit's st.login) before any data
    # Where commands keep their details (Dagster's event lines, dbt's output, traces): default `logs/` beside
    # the warehouse file.
    bitbucket_log_dir: str | None = None

    # Dagster's instance (Dagster's own variable): CLI runs are recorded there, and show in its UI, when set.
    dagster_home: str | None = None

    # Monitoring: where failed runs are posted (a Slack-compatible incoming webhook; its URL is a secret), and
    # after how long without a complete sync the raw snapshot counts as stale (a freshness check).
    bitbucket_alert_webhook: SecretStr | None = None
    bitbucket_sync_stale_hours: float = Field(DEFAULT_SYNC_STALE_HOURS, gt=0)

    @field_validator(
        "duckdb_path",
        "bitbucket_dashboard_db",
        "bitbucket_approver_policy",
        "dagster_home",
        "bitbucket_signing_key",
        "bitbucket_signing_public_key",
        "bitbucket_log_dir",
    )
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        """MotherDuck databases (`md:`) are names, not files; every file path becomes absolute."""
        if value is None or value.startswith("md:"):
            return value
        return str(Path(value).expanduser().resolve())

    @field_validator("duckdb_path", "bitbucket_dashboard_db")
    @classmethod
    def _no_token_in_database(cls, value: str | None, info) -> str | None:
        """A MotherDuck database names no token (`md:name?motherduck_token=...`): the path is handed to dbt on
        its command line, which dbt and Dagster log. DuckDB reads MOTHERDUCK_TOKEN from the environment."""
        # `md:` and `motherduck:` alike (the latter a path by now: its query string is still there)
        options = parse_qsl((value or "").partition("?")[2], keep_blank_values=True)
        if any("token" in name.lower() for name, _ in options):
            raise ValueError(
                f"{info.field_name.upper()} must not contain a MotherDuck token "
                "(md:name?motherduck_token=...): set MOTHERDUCK_TOKEN instead, which DuckDB reads itself"
            )
        return value

    @model_validator(mode="after")
    def _policy_named_when_set(self) -> Settings:
        """Read from the process environment, a policy variable that is set but empty is an error, not "no
        policy" (every other empty variable counts as unset)."""
        if type(self) is Settings and self.bitbucket_approver_policy is None:
            empty_policy_problem(os.environ)
        return self

    @model_validator(mode="after")
    def _change_control_token_has_its_workspace(self) -> Settings:
        """A workspace access token reaches one workspace: it is used only with that workspace's name."""
        if self.bitbucket_change_control_token is not None and not self.bitbucket_change_control_workspace:
            raise ValueError(
                "BITBUCKET_CHANGE_CONTROL_TOKEN is set without BITBUCKET_CHANGE_CONTROL_WORKSPACE: name the "
                "workspace (slug) the access token belongs to"
            )
        return self

    @field_validator("bitbucket_api_url", "bitbucket_oauth_token_url", "bitbucket_admin_api_url")
    @classmethod
    def _plain_url(cls, value: str, info) -> str:
        """No trailing slash, and no credentials in the URL (they would be stored and logged with it)."""
        return reject_credentials_in_url(value.rstrip("/"), info.field_name.upper())

    # ---- derived ----

    @property
    def workspace_filter(self) -> list[str] | None:
        return comma_list(self.bitbucket_workspaces)

    @property
    def admin_managed_workspaces(self) -> list[str] | None:
        """Workspaces named as administered from admin.atlassian.com; None: detect them from the snapshot."""
        return comma_list(self.bitbucket_admin_managed_workspaces)

    @property
    def admin_api_configured(self) -> bool:
        return bool(self.bitbucket_admin_org_id and self.bitbucket_admin_api_key)

    @property
    def is_motherduck(self) -> bool:
        return self.duckdb_path.startswith("md:")

    @property
    def protected_groups(self) -> tuple[str, ...]:
        return tuple(comma_list(self.bitbucket_protected_groups) or ())

    def secret(self, field: str) -> str | None:
        """The value of a secret field (`bitbucket_api_token`, ...), for the one place that hands it on."""
        value = getattr(self, field)
        return value.get_secret_value() if value is not None else None

    @property
    def log_directory(self) -> Path:
        """BITBUCKET_LOG_DIR, else `logs/` beside the warehouse file (MotherDuck: `logs/` in this folder)."""
        if self.bitbucket_log_dir:
            return Path(self.bitbucket_log_dir)
        return Path("logs").resolve() if self.is_motherduck else Path(self.duckdb_path).parent / "logs"

    def ensure_warehouse_directory(self) -> None:
        """Create the directory of a file warehouse (DuckDB creates the file, not its folder)."""
        if not self.is_motherduck:
            Path(self.duckdb_path).parent.mkdir(parents=True, exist_ok=True)


def comma_list(value: str | None) -> list[str] | None:
    """`"a, b,"` -> `["a", "b"]`; None (or nothing but commas) -> None."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, for starting a child process (`demo --dagster`) with it."""
    return dict(os.environ)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the process environment; or, when `env` (names as in `.env.example`) or `overrides`
    (field names) are given, from those alone: the demo and tests configure a simulator this way without a
    user's own variables leaking in. A bad value raises `SettingsError` naming the variable, never the value.
    """
    try:
        if env is None and not overrides:
            empty_policy_problem(os.environ)
            return Settings()
        if "bitbucket_approver_policy" not in overrides:
            empty_policy_problem(env or {})
        values = {
            k.lower(): v for k, v in (env or {}).items() if v != "" and k.lower() in Settings.model_fields
        }
        return _ExplicitSettings(**{**values, **overrides})
    except ValidationError as exc:
        # Name the variable and what is wrong, never the value: it may be a secret (a token, a URL with one).
        problems = [
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise SettingsError("; ".join(problems)) from None


class SettingsError(ValueError):
    """A variable has a value the settings cannot use; the message names it (never its value)."""


POLICY_VARIABLE = "BITBUCKET_APPROVER_POLICY"


def empty_policy_problem(environment: Mapping[str, str]) -> None:
    """A policy variable set but empty would silently mean "anyone may approve": refuse it."""
    value = environment.get(POLICY_VARIABLE)
    if value is not None and not value.strip():
        raise SettingsError(
            f"{POLICY_VARIABLE} is set but empty: name the approver policy file, or unset the variable to "
            "run without a policy (every surface then says so)"
        )


class _ExplicitSettings(Settings):
    """Settings that read nothing from the environment: only what the caller passes."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):  # type: ignore[override]
        return (init_settings,)


def environment_variable_holds(variable: str, value: str) -> bool:
    """Whether `variable` is set to exactly `value`, so Dagster can be given an `EnvVar` instead of the
    value."""
    return os.environ.get(variable) == value


def reject_credentials_in_url(url: str, variable: str = "BITBUCKET_API_URL") -> str:
    """An API URL is an http(s) URL with a host (its origin is where the credential may go), and must not
    carry `user:password@`: it would be stored (raw.syncs) and logged as a plain URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{variable} must be an http(s) URL with a host, such as {DEFAULT_API_URL}")
    if parts.username or parts.password:
        raise ValueError(
            f"{variable} must not contain credentials (user:password@...): set BITBUCKET_EMAIL and "
            "BITBUCKET_API_TOKEN (or another credential variable) instead"
        )
    return url
