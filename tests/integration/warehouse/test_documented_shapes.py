"""The whole pipeline on the `documented` organisation: the simulator serving the shapes Atlassian's examples
show (members and the effective list without `account_id`, groups in permission lists without `owner`, a
user-owned repository, `/2.0/user` with `username` and `has_2fa_enabled: null`; docs/simulator.md)."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.connection_check import check_connection
from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation
from tests.support.warehouses import built_in_the_workers_dir, run_pipeline


@pytest.fixture(scope="module")
def documented(tmp_path_factory):
    org = load_organisation("documented")
    keep = tmp_path_factory.mktemp("documented") / "w.duckdb"
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        with built_in_the_workers_dir(tmp_path_factory, keep) as db:
            assert run_pipeline(server.url, email, db).success
        report = check_connection(
            BitbucketClient(Credentials.api_token(email, SIM_API_TOKEN), server.url, requests_per_hour=1e7)
        )
    return org, str(keep), report


def query(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_users_keep_the_account_id_any_list_gives_them(documented) -> None:
    org, db, _ = documented
    users = {
        row[0]: row[1:]
        for row in query(db, "select display_name, account_id, nickname, is_former_user from marts.dim_users")
    }
    by_name = {u.display_name: u for u in org.users.values()}
    # Sean: the member list and the effective list leave his account id out; group members and permission
    # lists carry it. Colin: an outside collaborator, in a permission list (with it) and the effective list
    # (without).
    for name in ("Sean Conaty", "Colin Cameron", "Erik van Zijst"):
        assert users[name] == (by_name[name].account_id, by_name[name].nickname, False), name
    # The service account is seen only in the member list and the effective list: no account id, but not a
    # deleted account either. The deleted account is one.
    assert users["Access Sync Bot"] == (None, "svc", False)
    assert users["Former user"] == (None, None, True)


def test_groups_without_owner_still_grant(documented) -> None:
    _, db, _ = documented
    assert query(
        db,
        "select resource_key, principal_id, permission from marts.fct_grants where principal_type = 'group' "
        "and resource_type = 'repository' order by all",
    ) == [("geordi", "developers", "read")]


def test_a_user_owned_repository_is_modelled_like_any_other(documented) -> None:
    _, db, _ = documented
    assert query(
        db, "select workspace_slug, repository_slug, is_public from marts.dim_repositories order by all"
    ) == [("bbworkspace1", "geordi", False), ("bbworkspace1", "whee", False), ("gildas_cherruel", "bb", True)]
    assert query(
        db,
        "select user_display_name, permission from marts.fct_effective_access "
        "where resource_key = 'bb' order by all",
    ) == [("Access Sync Bot", "admin"), ("Sean Conaty", "read")]


def test_check_reads_the_documented_current_user(documented) -> None:
    _, _, report = documented
    assert report.identity.startswith("Access Sync Bot {") and report.can_sync
