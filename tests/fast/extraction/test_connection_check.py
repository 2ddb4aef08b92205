"""`bitbucket-access check`: identity, credential kind, workspaces, admin rights, missing scopes, verdict."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials, MissingScopesError, PermissionDeniedError
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.connection_check import check_connection
from bitbucket_simulator import (
    SIM_ACCESS_TOKEN,
    SIM_API_TOKEN,
    SIM_DIRECTORY_ID,
    SIM_ORG_API_KEY,
    SIM_ORG_API_KEY_READ_ONLY,
    SIM_ORG_ID,
    Faults,
)
from tests.support.extraction import sync


def client(sim, creds) -> BitbucketClient:
    return BitbucketClient(creds, sim.url, requests_per_hour=1e7, backoff_base=0.01, backoff_max=0.02)


def test_full_token_names_each_workspaces_provisioning_state(make_sim) -> None:
    sim = make_sim()
    report = check_connection(client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN)))
    assert report.identity.startswith("Access Sync Bot {")
    assert report.workspaces == [("tiny-co", True), ("tiny-labs", True)]
    assert report.can_sync and report.provisioning == "partly ready" and not report.can_provision
    # tiny-labs is administered from admin.atlassian.com and no Admin API is set: said so, per workspace.
    assert {slug: p.state for slug, p in report.provisioning_by_workspace.items()} == {
        "tiny-co": "ready",
        "tiny-labs": "not ready",
    }
    assert report_line(report, "provisioning in tiny-co") == (
        "provisioning in tiny-co: ready: through the Bitbucket 1.0 groups API"
    )
    assert report.lines()[-1] == (
        "verdict: ready to sync; ready to provision in tiny-co, not in tiny-labs (see above)"
    )
    # The provisioning probe changed nothing.
    assert not [r for r in sim.simulator.request_log if r.method == "PUT" and r.status == 200]


def test_read_only_token_lists_what_provisioning_lacks(make_sim) -> None:
    sim = make_sim()
    reads = {
        "read:user:bitbucket",
        "read:workspace:bitbucket",
        "read:project:bitbucket",
        "read:repository:bitbucket",
        "read:permission:bitbucket",
    }
    sim.simulator.credentials.add_api_token("ro@tiny.example", "ro-token", sim.org.operator_uuid, reads)
    report = check_connection(client(sim, Credentials.api_token("ro@tiny.example", "ro-token")))
    assert report.can_sync and not report.can_provision
    assert report.missing_for_provisioning == {"write:permission:bitbucket"}
    assert report.lines()[-1] == "verdict: ready to sync, not ready to provision in any workspace (see above)"


def test_missing_read_scopes_and_non_admin(make_sim) -> None:
    sim = make_sim()
    ben = sim.user("ben")
    sim.simulator.credentials.add_api_token(
        ben.email, "ben-token", ben.uuid, {"read:user:bitbucket", "read:workspace:bitbucket"}
    )
    report = check_connection(client(sim, Credentials.api_token(ben.email, "ben-token")))
    assert report.workspaces == [("tiny-co", False), ("tiny-labs", False)]
    assert not report.can_sync
    assert report.problems == [
        "the credential administers none of the workspaces it sees: a sync needs an owner"
    ]
    assert "workspace tiny-co: member (not an administrator): skipped by a sync" in report.lines()


def test_access_token_is_told_it_cannot_read_permissions(make_sim, tmp_path) -> None:
    sim = make_sim()
    report = check_connection(client(sim, Credentials.access_token(SIM_ACCESS_TOKEN)))
    assert any("access tokens cannot read permissions" in p for p in report.problems)
    with pytest.raises(PermissionDeniedError, match="Access tokens cannot"):
        bearer = client(sim, Credentials.access_token(SIM_ACCESS_TOKEN))
        from bitbucket_assets.extraction.extract import ExtractionOptions
        from bitbucket_assets.extraction.sync import run_sync

        with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
            run_sync(bearer, con, ExtractionOptions())


def test_missing_scope_fails_the_sync_and_names_them(make_sim, tmp_path) -> None:
    sim = make_sim()
    sim.simulator.credentials.add_api_token(
        sim.email, "no-groups", sim.org.operator_uuid, {"read:user:bitbucket", "read:workspace:bitbucket"}
    )
    expected = (
        r"Required scopes: read:permission:bitbucket; granted: read:user:bitbucket, read:workspace:bitbucket"
    )
    with pytest.raises(MissingScopesError, match=expected + r". \[/1.0/groups/tiny-co, workspace tiny-co\]"):
        sync(sim, tmp_path / "w.duckdb", token="no-groups")


@pytest.mark.parametrize(
    ("administered", "verdict"),
    [
        ("tiny-co", "verdict: ready to sync and to provision"),
        # The only workspace is administered from admin.atlassian.com and no Admin API is set: nothing can be
        # provisioned, and the verdict says so (it said "ready ... (except in tiny-labs)").
        ("tiny-labs", "verdict: ready to sync, not ready to provision in any workspace (see above)"),
    ],
)
def test_the_verdict_does_not_depend_on_which_workspace_comes_first(make_sim, administered, verdict) -> None:
    sim = make_sim()
    other = {"tiny-co": "tiny-labs", "tiny-labs": "tiny-co"}[administered]
    sim.org.workspaces[other].members[sim.org.operator_uuid].role = "member"
    sim.org.touch()
    report = check_connection(client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN)))
    assert report.administered == [administered] and report.can_sync
    assert f"workspace {other}: member (not an administrator): skipped by a sync" in report.lines()
    assert report.lines()[-1] == verdict


def test_an_answer_check_does_not_understand_leaves_provisioning_unknown_not_sync(make_sim) -> None:
    """A 405 from the write probe (a proxy, an API change) says nothing about reads."""
    sim = make_sim()
    routes = sim.simulator.app.app.router.routes  # the Starlette app inside the simulator's fault middleware
    put_routes = [
        r for r in routes if getattr(r, "path", "").endswith("/members/{member}") and "PUT" in r.methods
    ]
    for route in put_routes:
        # the simulator now answers 405 Method Not Allowed to the PUT, as a proxy might
        route.methods = {"PATCH"}
    report = check_connection(client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN)))
    assert report.can_sync and report.provisioning == "unknown"
    tiny_co = report.provisioning_by_workspace["tiny-co"]
    assert tiny_co.state == "unknown" and "HTTP 405" in tiny_co.detail
    assert report.lines()[-1] == "verdict: ready to sync, provisioning unknown (see above)"


def test_admin_managed_workspaces_are_checked_against_the_admin_api(make_sim) -> None:
    sim = make_sim()
    bitbucket = client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN))

    def admin(key: str) -> AtlassianAdminApi:
        return AtlassianAdminApi.connect(SIM_ORG_ID, key, sim.url, requests_per_hour=1e7)

    ready = check_connection(bitbucket, admin(SIM_ORG_API_KEY))
    assert report_line(ready, "provisioning in tiny-labs") == (
        "provisioning in tiny-labs: ready: administered from admin.atlassian.com (detected: Bitbucket sends "
        f"no added_on for its members); through the Atlassian Admin API (organization {SIM_ORG_ID}, "
        f"directory {SIM_DIRECTORY_ID}): the key may change group memberships"
    )
    assert ready.lines()[-1] == "verdict: ready to sync and to provision"
    # The write probe changed nothing, on either API.
    assert sim.simulator.admin.changes == []
    assert not [r for r in sim.simulator.request_log if (r.method, r.status) in (("PUT", 200), ("POST", 204))]

    refused = check_connection(bitbucket, admin(SIM_ORG_API_KEY_READ_ONLY))
    line = report_line(refused, "provisioning in tiny-labs")
    assert "the Atlassian Admin API refuses: permission denied (HTTP 403)" in line
    assert "does not have the permission to manage groups" in line and SIM_ORG_API_KEY_READ_ONLY not in line
    assert refused.lines()[-1] == (
        "verdict: ready to sync; ready to provision in tiny-co, not in tiny-labs (see above)"
    )

    unset = check_connection(bitbucket, None, admin_managed=["tiny-labs"])
    assert "named in BITBUCKET_ADMIN_MANAGED_WORKSPACES" in report_line(unset, "provisioning in tiny-labs")
    assert "set BITBUCKET_ADMIN_ORG_ID and BITBUCKET_ADMIN_API_KEY" in report_line(
        unset, "provisioning in tiny-labs"
    )


def report_line(report, prefix: str) -> str:
    [line] = [line for line in report.lines() if line.startswith(prefix)]
    return line


def test_entries_a_sync_would_skip_are_warnings_with_counts(make_sim, tmp_path) -> None:
    """A sync skips entries without their identity (raw.anomalies) and succeeds: `check` says the same, with
    counts, instead of "NOT ready to sync"."""
    sim = make_sim(faults=Faults(seed=3, odd_entry_rate=0.05))
    # (admin_managed=[]: no second read of the member list to detect admin-managed workspaces)
    report = check_connection(client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN)), admin_managed=[])
    assert sim.simulator.odd_entries > 0
    assert report.can_sync and not report.problems
    assert sum(report.skipped_entries.values()) == sim.simulator.odd_entries
    warnings = [line for line in report.lines() if line.startswith("warning: ")]
    assert warnings and all("would be skipped by a sync (entry without `user`" in w for w in warnings)
    assert any(w.startswith("warning: tiny-co: ") and "2.0/workspaces/*/permissions " in w for w in warnings)
    result = sync(sim, tmp_path / "w.duckdb")  # and the sync indeed goes through, skipping such entries
    assert result.counts["anomalies"] > 0


def test_a_workspace_whose_groups_are_refused_is_what_a_sync_skips(make_sim, tmp_path) -> None:
    sim = make_sim(groups_status={"tiny-labs": 403})
    bitbucket = client(sim, Credentials.api_token(sim.email, SIM_API_TOKEN))
    report = check_connection(bitbucket)
    assert report.can_sync and report.covered == ["tiny-co"]
    line = report_line(report, "workspace tiny-labs")
    assert line.startswith("workspace tiny-labs: skipped by a sync: its groups cannot be read (permission")
    named = check_connection(bitbucket, workspaces=["tiny-labs"])
    assert not named.can_sync and named.problems[0].startswith(
        "BITBUCKET_WORKSPACES names tiny-labs, but its groups cannot be read"
    )
    assert named.lines()[-1] == "verdict: NOT ready to sync"
