"""Bitbucket's own answers, replayed: Atlassian's documented examples and payloads recorded by public
clients (tests/fixtures/recorded, each with its source and licence), served on loopback to the real client,
extraction, dbt build and Dagster job, with no simulator in between.

- every user any payload names with an account id keeps it in `dim_users`, and a field comes from the
  sightings in a fixed order of sources (the member list first), never from the order of the reads;
- a sync whose permission lists all answer "There is no API hosted at this URL" fails, publishes nothing, and
  the next good sync records no removal;
- an answer in which every repository vanished is held back (`suspect`) until a sync accepts it;
- a recorded 403 names the missing scopes; a list's 404 that is not about its repository fails.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials, MissingScopesError
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.gone import UnexplainedNotFoundError
from bitbucket_assets.extraction.sync import run_sync
from tests.support.replay import ReplayServer, Scenario, account_ids, replay
from tests.support.warehouses import built_in_the_workers_dir, run_pipeline

EMAIL = "someone@example.com"  # the replay checks that a credential is sent, not which
GEORDI = "{85d08b4e-571d-44e9-a507-fa476535aa98}"


def query(db: str, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def pipeline(server: ReplayServer, db: str, scenario: str, **config):
    server.serve(scenario)
    run_config = {"ops": {"bitbucket_raw_snapshot": {"config": config}}} if config else None
    return run_pipeline(server.url, EMAIL, db, run_config=run_config, raise_on_error=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The warehouse after one sync of the documented examples, and the replay server (left serving them)."""
    keep = tmp_path_factory.mktemp("recorded") / "w.duckdb"
    db = str(keep)
    with replay("atlassian-examples") as server:
        with built_in_the_workers_dir(tmp_path_factory, keep) as built:
            result = pipeline(server, built, "atlassian-examples")
        # The documentation's examples disagree with each other, so the reconciliation with Bitbucket's
        # effective list reports mismatches; everything else passes.
        failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
        assert failed == {"effective_access_matches_bitbucket"}
        yield db, server


@pytest.fixture
def warehouse(recorded, warehouse_dir):
    """A copy of the recorded warehouse, and the replay server."""
    db, server = recorded
    copy = str(warehouse_dir / "w.duckdb")
    shutil.copy(db, copy)
    return copy, server


def test_every_user_a_payload_names_with_an_account_id_keeps_it(recorded) -> None:
    db, _ = recorded
    named = {}
    for payload in Scenario.load("atlassian-examples").payloads():
        named |= account_ids(payload)
    # Sean Conaty: the member list and the effective list show him without one, the permission lists with one.
    assert named["{504c3b62-8120-4f0c-a7bc-87800b9d6f70}"] == "557058:ba8948b2-49da-43a9-9e8b-e7249b8e324c"
    kept = dict(query(db, "select user_uuid, account_id from marts.dim_users"))
    assert {uuid: kept.get(uuid) for uuid in named} == named
    users = {
        row[0]: row[1:]
        for row in query(
            db,
            "select user_uuid, display_name, nickname, is_former_user, is_workspace_member "
            "from marts.dim_users",
        )
    }
    # One uuid, two names in Atlassian's examples: the permission lists' (ranked before the effective list's).
    assert users["{d301aafa-d676-4ee0-88be-962be7417567}"] == ("Colin Cameron", "Colin Cameron", False, False)
    # A member no payload gives an account id: not a "Former user", and no "deleted account" risk.
    assert users["{470c176d-3574-44ea-bb41-89e8638bcca4}"] == ("Erik van Zijst", None, False, True)
    assert not query(db, "select * from marts.fct_access_risks where detail like '%deleted account%'")


def test_risk_text_names_the_path_kinds_the_access_comes_through(recorded) -> None:
    db, _ = recorded
    details = dict(
        query(
            db,
            "select user_display_name, detail from marts.fct_access_risks "
            "where risk = 'access held outside the workspace membership'",
        )
    )
    # Justen Stepka is in the documented 1.0 group `administrators`, which holds admin on project TEST.
    assert details["Justen Stepka"] == "user, not a member; reaches 2 resources through groups"
    assert details["Colin Cameron"] == "user, not a member; reaches 3 resources through direct grants"


def test_bulk_group_grants_answered_by_the_router_fall_back_to_each_repository(recorded) -> None:
    db, _ = recorded
    assert query(db, "select repository_group_lists from raw.workspaces") == [
        ("per repository: the 1.0 group-privileges list answered HTTP 404",)
    ]


def test_no_api_here_publishes_nothing_and_the_next_sync_records_no_removal(warehouse) -> None:
    db, server = warehouse
    before = query(db, "select repository_uuid from marts.dim_repositories order by 1")
    failed = pipeline(server, db, "no-api-here")
    assert not failed.success
    error = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "Bitbucket says no API is hosted at this URL" in error.message
    quoted = GEORDI.replace("{", "%7B").replace("}", "%7D")
    assert f"[/2.0/repositories/bbworkspace1/{quoted}/permissions-config/" in error.message
    assert query(db, "select status from raw.syncs order by started_at") == [("complete",), ("failed",)]
    assert query(db, "select count(*) from raw.repositories group by sync_id") == [(2,)]
    again = pipeline(server, db, "atlassian-examples")
    assert {c.check_name for c in again.get_asset_check_evaluations() if not c.passed} == {
        "effective_access_matches_bitbucket"
    }
    assert query(db, "select repository_uuid from marts.dim_repositories order by 1") == before
    assert query(db, "select count(*) from marts.fct_access_changes where change = 'removed'") == [(0,)]
    assert query(db, "select count(*) from marts.fct_grant_history where valid_to is not null") == [(0,)]


def test_every_repository_vanishing_is_held_back_until_accepted(warehouse) -> None:
    db, server = warehouse
    held = pipeline(server, db, "empty-repositories")
    assert not held.success
    [check] = [c for c in held.get_asset_check_evaluations() if c.check_name == "nothing_vanished"]
    assert not check.passed and check.metadata["vanished"].value == [
        f"bbworkspace1: 2 of 2 repositories vanished (100%) since sync {held_sync(db, 0)}: geordi, whee"
    ]
    # The marts keep the last state: dbt did not run, nothing was removed.
    assert query(db, "select status from raw.syncs order by started_at") == [("complete",), ("suspect",)]
    assert query(db, "select count(*) from marts.dim_repositories") == [(2,)]
    assert query(db, "select count(*) from marts.fct_access_changes where change = 'removed'") == [(0,)]
    served = len(server.served)
    accepted = pipeline(server, db, "empty-repositories", accept_vanished=True)
    assert len(server.served) == served  # the held snapshot is published as it was read: no call
    assert accepted.success or {
        c.check_name for c in accepted.get_asset_check_evaluations() if not c.passed
    } <= {"no_unexpected_empty_entity"}
    assert query(db, "select status, vanished_accepted from raw.syncs order by started_at") == [
        ("complete", False),
        ("complete", True),
    ]
    assert query(db, "select count(*) from marts.dim_repositories") == [(0,)]
    removed = query(db, "select count(*) from marts.fct_access_changes where change = 'removed'")
    assert removed[0][0] > 0  # accepted: now the removals are real


def held_sync(db: str, index: int) -> str:
    return query(db, "select sync_id from raw.syncs order by started_at")[index][0]


def _extract(server: ReplayServer, db: str):
    client = BitbucketClient(Credentials.api_token(EMAIL, "recorded"), server.url, requests_per_hour=1e7)
    with duckdb.connect(db) as con:
        return run_sync(client, con, ExtractionOptions())


def test_a_recorded_missing_scope_answer_names_the_scopes(tmp_path) -> None:
    with replay("missing-scopes") as server, pytest.raises(MissingScopesError) as excinfo:
        _extract(server, str(tmp_path / "w.duckdb"))
    assert excinfo.value.required == ["project"] and "granted: runner:write" in str(excinfo.value)


def test_a_list_404_not_about_its_repository_fails_naming_endpoint_and_body(tmp_path) -> None:
    db = str(tmp_path / "w.duckdb")
    with (
        replay("list-404-not-about-the-repository") as server,
        pytest.raises(UnexplainedNotFoundError) as exc,
    ):
        _extract(server, db)
    message = str(exc.value)
    assert "/permissions-config/users answered HTTP 404" in message and '"message": "Not found"' in message
    assert "but the repository bbworkspace1/geordi itself reads fine" in message
    assert query(db, "select status from raw.syncs") == [("failed",)]
