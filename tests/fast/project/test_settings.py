"""One settings object: read once from the environment, one warehouse path for everyone, secrets masked."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from bitbucket_assets.client import AuthenticationError, credentials_from_settings
from bitbucket_assets.definitions import build_definitions
from bitbucket_assets.defs.resources import BitbucketResource
from bitbucket_assets.settings import DEFAULT_DUCKDB_PATH, Settings, SettingsError, load_settings
from bitbucket_assets.warehouse.dbt_runs import dbt_vars
from bitbucket_assets.warehouse.files import read_copy_path, reader_database
from tests.support import ROOT

SECRET = "ATATT3xSettingsTestSecret0001"


def test_defaults_and_one_absolute_warehouse_path(clean_env, tmp_path) -> None:
    clean_env.chdir(tmp_path)
    settings = Settings()
    assert settings.duckdb_path == str(tmp_path / DEFAULT_DUCKDB_PATH)
    assert settings.bitbucket_api_url == "https://api.bitbucket.org"
    assert settings.bitbucket_requests_per_hour == 900 and settings.bitbucket_raw_sync_retention == 30
    assert settings.workspace_filter is None
    assert reader_database(settings) == str(read_copy_path(settings.duckdb_path))
    # dbt is handed the same absolute file.
    assert dbt_vars(settings.duckdb_path) == f'{{"duckdb_path": "{tmp_path / DEFAULT_DUCKDB_PATH}"}}'


def test_dbt_profile_fallback_is_the_settings_default(clean_env) -> None:
    """Run by hand from dbt_project/ without DUCKDB_PATH, dbt opens the settings' default file."""
    clean_env.chdir(ROOT)
    profile = yaml.safe_load((ROOT / "dbt_project" / "profiles.yml").read_text())
    path = profile["bitbucket_access"]["outputs"]["default"]["path"]
    fallback = path.split("env_var('DUCKDB_PATH', '")[1].split("'")[0]
    assert (ROOT / "dbt_project" / fallback).resolve() == Path(Settings().duckdb_path)


def test_environment_is_read_with_the_documented_names(clean_env, tmp_path) -> None:
    clean_env.setenv("BITBUCKET_API_URL", "http://127.0.0.1:7990/")
    clean_env.setenv("BITBUCKET_WORKSPACES", " northwind, {5f1f7e1c-0000-4000-8000-000000000001} ,")
    clean_env.setenv("BITBUCKET_REQUESTS_PER_HOUR", "450")
    clean_env.setenv("BITBUCKET_SYNC_CRON", "15 3 * * *")
    clean_env.setenv("BITBUCKET_RAW_SYNC_RETENTION", "7")
    clean_env.setenv("BITBUCKET_ACCESS_TOKEN", "")  # empty means unset
    clean_env.setenv("DUCKDB_PATH", "md:bitbucket_access")
    settings = Settings()
    assert settings.bitbucket_api_url == "http://127.0.0.1:7990"
    assert settings.workspace_filter == ["northwind", "{5f1f7e1c-0000-4000-8000-000000000001}"]
    assert settings.bitbucket_requests_per_hour == 450 and settings.bitbucket_access_token is None
    assert (
        settings.duckdb_path == "md:bitbucket_access" and reader_database(settings) == "md:bitbucket_access"
    )
    defs = build_definitions(settings)
    assert defs.resolve_schedule_def("daily_bitbucket_sync").cron_schedule == "15 3 * * *"
    assert defs.resolve_schedule_def("jit_expiry_every_15_minutes").cron_schedule == "*/15 * * * *"


def test_resources_carry_the_settings_and_run_config_only_per_run_switches(clean_env) -> None:
    settings = load_settings(
        bitbucket_raw_sync_retention=7,
        bitbucket_max_changes_per_run=3,
        bitbucket_protected_groups="administrators, release-managers",
        bitbucket_requests_per_hour=450,
        duckdb_path="md:x",
    )
    defs = build_definitions(settings)
    resources = defs.resources
    assert resources["retention"].raw_sync_retention == 7
    assert resources["bitbucket"].requests_per_hour == 450
    policy = resources["provisioning"].policy()
    assert policy.max_changes_per_run == 3 and policy.protected_groups == (
        "administrators",
        "release-managers",
    )
    assert resources["provisioning"].policy(max_changes_per_run=10).max_changes_per_run == 10
    # Run config holds only the per-run switches.
    for job_name, op, switches in [
        ("bitbucket_sync", "bitbucket_raw_snapshot", {"full", "accept_vanished"}),
        ("provision_group_membership", "apply_approved_requests", {"dry_run", "max_changes_per_run"}),
        ("expire_jit_access", "expire_just_in_time_access", {"dry_run", "max_changes_per_run"}),
    ]:
        ops = defs.resolve_job_def(job_name).run_config_schema.config_type.fields["ops"].config_type.fields
        fields = {
            name: set(getattr(field.config_type.fields["config"].config_type, "fields", None) or ())
            for name, field in ops.items()
            if "config" in field.config_type.fields
        }
        assert {name: names for name, names in fields.items() if names} == {op: switches}


def test_credential_order_and_masked_secrets(clean_env) -> None:
    clean_env.setenv("BITBUCKET_EMAIL", "svc@example.com")
    clean_env.setenv("BITBUCKET_API_TOKEN", SECRET)
    clean_env.setenv("BITBUCKET_ACCESS_TOKEN", "second-choice")
    settings = Settings()
    assert credentials_from_settings(settings).kind == "api_token"
    assert (
        SECRET not in repr(settings)
        and SECRET not in str(settings)
        and SECRET not in repr(credentials_from_settings(settings))
    )
    clean_env.delenv("BITBUCKET_API_TOKEN")
    assert credentials_from_settings(Settings()).kind == "access_token"
    clean_env.delenv("BITBUCKET_ACCESS_TOKEN")
    with pytest.raises(AuthenticationError, match="No Bitbucket credential configured"):
        credentials_from_settings(Settings())


def test_secrets_reach_dagster_as_env_vars(clean_env) -> None:
    clean_env.setenv("BITBUCKET_EMAIL", "svc@example.com")
    clean_env.setenv("BITBUCKET_API_TOKEN", SECRET)
    resource = BitbucketResource.from_settings(Settings())
    assert (
        isinstance(resource.api_token, dg.EnvVar) and resource.api_token.env_var_name == "BITBUCKET_API_TOKEN"
    )
    assert resource.email == "svc@example.com"
    assert resource.process_config_and_initialize().credentials().secret == SECRET
    # The organization API key of the Atlassian Admin API travels the same way.
    clean_env.setenv("BITBUCKET_ADMIN_ORG_ID", "org-1")
    clean_env.setenv("BITBUCKET_ADMIN_API_KEY", SECRET)
    admin = BitbucketResource.from_settings(Settings())
    assert (
        isinstance(admin.admin_api_key, dg.EnvVar)
        and admin.admin_api_key.env_var_name == "BITBUCKET_ADMIN_API_KEY"
    )
    assert admin.process_config_and_initialize().get_admin_api().client.credentials.secret == SECRET
    assert SECRET not in repr(Settings())
    # And the second credential of change control, a workspace access token, to the same API root only.
    clean_env.setenv("BITBUCKET_CHANGE_CONTROL_TOKEN", SECRET)
    with pytest.raises(SettingsError, match="BITBUCKET_CHANGE_CONTROL_WORKSPACE") as refused:
        load_settings(dict(os.environ))
    assert SECRET not in str(refused.value)
    clean_env.setenv("BITBUCKET_CHANGE_CONTROL_WORKSPACE", "acme")
    control = BitbucketResource.from_settings(Settings())
    assert control.change_control_token.env_var_name == "BITBUCKET_CHANGE_CONTROL_TOKEN"
    client = control.process_config_and_initialize().get_change_control_client()
    assert client.credentials.kind == "access_token" and client.credentials.secret == SECRET
    assert client.origin == BitbucketResource.from_settings(Settings()).get_client().origin
    assert SECRET not in repr(Settings()) and SECRET not in repr(client.credentials)
    # A token given in code (the demo's simulator token) is not in the environment: passed as a value.
    explicit = BitbucketResource.from_settings(
        load_settings(bitbucket_email="a@b.example", bitbucket_api_token="in-code")
    )
    assert explicit.api_token == "in-code"


def test_explicit_settings_ignore_the_environment(clean_env) -> None:
    clean_env.setenv("BITBUCKET_WORKSPACES", "only-this-one")
    clean_env.setenv("DUCKDB_PATH", "md:from-env")
    explicit = load_settings(bitbucket_api_url="http://127.0.0.1:1", duckdb_path="md:explicit")
    assert explicit.workspace_filter is None and explicit.duckdb_path == "md:explicit"
    from_dict = load_settings({"BITBUCKET_WORKSPACES": "a,b", "UNRELATED": "x"})
    assert from_dict.workspace_filter == ["a", "b"] and from_dict.duckdb_path != "md:from-env"


def test_every_setting_is_documented() -> None:
    """Each variable the settings read is in `.env.example` and in the README's Configuration table."""
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name in Settings.model_fields:
        variable = name.upper()
        assert f"{variable}=" in example, f"{variable} is not in .env.example"
        assert f"`{variable}`" in configuration, f"{variable} is not in the README's Configuration section"


@pytest.mark.parametrize(
    ("variable", "database"),
    [
        ("DUCKDB_PATH", "md:bitbucket_access?motherduck_token={}"),
        ("DUCKDB_PATH", "md:?MOTHERDUCK_TOKEN={}"),
        ("DUCKDB_PATH", "motherduck:bitbucket_access?saas_mode=true&motherduck_token={}"),
        ("BITBUCKET_DASHBOARD_DB", "md:bitbucket_access?motherduck_token={}"),
    ],
)
def test_a_motherduck_token_in_a_database_path_is_refused_and_never_echoed(
    clean_env, variable, database
) -> None:
    """dbt gets the warehouse on its command line, which dbt's log and Dagster's event log record."""
    clean_env.setenv(variable, database.format(SECRET))
    with pytest.raises(SettingsError, match=f"{variable} must not contain a MotherDuck token") as refused:
        load_settings()
    assert SECRET not in str(refused.value)


def test_other_motherduck_options_and_names_pass(clean_env) -> None:
    for database in ("md:bitbucket_access?saas_mode=true", "md:tokens_db", "md:db?session_hint=token-svc"):
        clean_env.setenv("DUCKDB_PATH", database)
        assert load_settings().duckdb_path == database
