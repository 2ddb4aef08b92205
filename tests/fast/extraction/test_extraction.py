"""Raw snapshots: what lands in DuckDB, atomicity, workspace filters, faults and secrets."""

from __future__ import annotations

import json

import duckdb
import pytest

from bitbucket_assets.client import (
    AuthenticationError,
    BitbucketClient,
    Credentials,
    MalformedResponseError,
    PermissionDeniedError,
    ServerError,
)
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_API_TOKEN, SIM_ORG_API_KEY, SIM_ORG_ID, Faults
from bitbucket_simulator.app import REMOVED_PATHS
from tests.support.extraction import RAW, snapshot, sync


def test_tiny_snapshot_contents(make_sim, tmp_path) -> None:
    sim = make_sim()
    result = sync(sim, tmp_path / "w.duckdb")
    assert result.workspaces == ["tiny-co", "tiny-labs"]
    # 100 members, plus the three who hold access from outside the membership (a collaborator, an app user,
    # a former user), named from the permission lists that show them.
    assert result.counts["users"] == 103 and result.counts["repositories"] == 6
    assert result.counts["workspace_members"] == 103
    data = snapshot(tmp_path / "w.duckdb", result.sync_id)
    ana = sim.user("ana")
    assert any(
        r[3] == "payments-api" and r[4] == ana.uuid and r[6] == "read"
        for r in data["repository_user_permissions"]
    )
    assert ("tiny-co", "leads") in {
        (r[1], r[4]) for r in data["project_group_permissions"] if r[6] == "create-repo"
    }
    assert next(r for r in data["groups"] if r[2] == "empty-group")[6] == 0  # member_count
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        status, counts, calls = con.execute(
            "SELECT status, entity_counts, api_calls FROM raw.syncs"
        ).fetchone()
        raw_json = con.execute(
            "SELECT raw->>'full_name' FROM raw.repositories WHERE repository_slug='ledger'"
        ).fetchone()
    assert status == "complete" and '"repositories": 6' in counts and "permissions-config" in calls
    assert raw_json == ("tiny-co/ledger",)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT display_name, user_type, account_id IS NULL, nickname IS NULL FROM raw.users u "
            "WHERE sync_id = $1 AND NOT EXISTS (SELECT 1 FROM raw.workspace_members m "
            "WHERE m.sync_id = $1 AND m.user_uuid = u.user_uuid) ORDER BY 1",
            [result.sync_id],
        ).fetchall()
    assert rows == [
        ("Deploy token", "app_user", False, False),
        ("Former user", "user", True, True),
        ("Olive Outside", "user", False, False),
    ]


def test_calls_are_minimal_and_never_hit_removed_endpoints(make_sim, tmp_path) -> None:
    sim = make_sim()
    sync(sim, tmp_path / "w.duckdb")
    paths = [r.path for r in sim.simulator.request_log]
    assert not set(paths) & set(REMOVED_PATHS)
    assert not [p for p in paths if p.startswith("/2.0/users/")]  # no call per user
    # 6 repositories and 4 projects: one call per permission list, nothing repeated, except that every
    # repository's group grants come from one /1.0/group-privileges call per workspace (2 workspaces).
    assert sum("/permissions-config/" in p for p in paths) == 6 + 2 * 4
    assert not [
        p for p in paths if p.startswith("/2.0/repositories/") and p.endswith("/permissions-config/groups")
    ]
    assert sorted(p for p in paths if p.startswith("/1.0/group-privileges/")) == [
        "/1.0/group-privileges/tiny-co",
        "/1.0/group-privileges/tiny-labs",
    ]
    calls = [(r.path, r.query) for r in sim.simulator.request_log]
    assert len(calls) == len(set(calls))


@pytest.mark.parametrize("refusal", [404, 405, 410, 403])
def test_group_privileges_refused_falls_back_to_each_repositorys_list_with_the_same_snapshot(
    make_sim, tmp_path, refusal: int
) -> None:
    bulk_sim, listed_sim = make_sim(), make_sim(group_privileges_status=refusal)
    bulk = sync(bulk_sim, tmp_path / "bulk.duckdb")
    listed = sync(listed_sim, tmp_path / "listed.duckdb")
    # The same rows, whichever way the group grants were read (the manifest columns aside).
    manifests = {"workspaces"}
    same = {
        t: rows for t, rows in snapshot(tmp_path / "bulk.duckdb", bulk.sync_id).items() if t not in manifests
    }
    assert same == {
        t: rows
        for t, rows in snapshot(tmp_path / "listed.duckdb", listed.sync_id).items()
        if t not in manifests
    }
    assert len(same["repository_group_permissions"]) > 0
    per_repo = [
        r
        for r in listed_sim.simulator.request_log
        if r.path.endswith("/permissions-config/groups") and r.path.startswith("/2.0/repositories/")
    ]
    assert len(per_repo) == 6
    # The manifest and the workspace rows say how each workspace's lists were read.
    for db, result, expected in (
        (tmp_path / "bulk.duckdb", bulk, "bulk: the 1.0 group-privileges list"),
        (
            tmp_path / "listed.duckdb",
            listed,
            f"per repository: the 1.0 group-privileges list answered HTTP {refusal}",
        ),
    ):
        with duckdb.connect(str(db), read_only=True) as con:
            manifest = json.loads(
                con.execute(
                    "SELECT repository_group_lists FROM raw.syncs WHERE sync_id = ?", [result.sync_id]
                ).fetchone()[0]
            )
        assert manifest == {"tiny-co": expected, "tiny-labs": expected}


@pytest.mark.parametrize("by", ["slug", "uuid", "bare-uuid"])
def test_workspace_filter_by_slug_or_uuid(make_sim, tmp_path, by: str) -> None:
    sim = make_sim()
    uuid = sim.org.workspaces["tiny-labs"].uuid
    wanted = {"slug": "tiny-labs", "uuid": uuid, "bare-uuid": uuid.strip("{}")}[by]
    result = sync(sim, tmp_path / "w.duckdb", workspaces=[wanted])
    assert result.workspaces == ["tiny-labs"] and result.counts["repositories"] == 1
    assert not [r for r in sim.simulator.request_log if "tiny-co" in r.path]


def test_unknown_workspace_fails_loudly_and_leaves_nothing(make_sim, tmp_path) -> None:
    sim = make_sim()
    with pytest.raises(PermissionDeniedError, match=r"nowhere.*cannot see"):
        sync(sim, tmp_path / "w.duckdb", workspaces=["nowhere"])
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM raw.syncs").fetchall() == [("failed",)]
        assert all(con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] == 0 for t in RAW)


def test_a_workspace_the_credential_does_not_administer_is_skipped_and_reported(make_sim, tmp_path) -> None:
    sim = make_sim()
    sim.org.workspaces["tiny-labs"].members[sim.org.operator_uuid].role = "member"
    sim.org.touch()
    result = sync(sim, tmp_path / "w.duckdb")
    assert result.workspaces == ["tiny-co"] and list(result.skipped) == ["tiny-labs"]
    assert "not an administrator" in result.skipped["tiny-labs"]
    assert not [r for r in sim.simulator.request_log if "tiny-labs" in r.path]  # nothing was asked of it
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        status, skipped = con.execute("SELECT status, skipped_workspaces FROM raw.syncs").fetchone()
    assert status == "complete" and "tiny-labs" in skipped


def test_naming_a_workspace_the_credential_does_not_administer_fails_before_any_fetch(
    make_sim, tmp_path
) -> None:
    sim = make_sim()
    sim.org.workspaces["tiny-labs"].members[sim.org.operator_uuid].role = "member"
    sim.org.touch()
    with pytest.raises(
        PermissionDeniedError, match=r"BITBUCKET_WORKSPACES names tiny-labs, which this credential does"
    ):
        sync(sim, tmp_path / "w.duckdb", workspaces=["tiny-co", "tiny-labs"])
    assert [r.path for r in sim.simulator.request_log] == ["/2.0/user/workspaces"]


def test_server_errors_midway_interrupt_and_the_next_sync_resumes(make_sim, tmp_path) -> None:
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    good = sync(sim, db)
    sim.org.workspaces["tiny-labs"].repositories["experiments"].group_grants["ghost"] = "read"  # group absent
    sim.org.touch()
    # The simulator cannot render a grant to a group that does not exist: the workspace's group privileges
    # answer 500 every time. Two retries: the server closes a connection after a 500, and a concurrent call
    # may reuse it.
    with pytest.raises(ServerError, match=r"HTTP 500 \[/1.0/group-privileges/tiny-labs"):
        sync(sim, db, max_retries=2)
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = con.execute("SELECT status FROM raw.syncs ORDER BY started_at").fetchall()
        interrupted = con.execute("SELECT sync_id FROM raw.syncs WHERE status = 'interrupted'").fetchone()[0]
        stages = con.execute(
            "SELECT workspace_slug, stage, done FROM raw.sync_checkpoints ORDER BY ALL"
        ).fetchall()
    assert statuses == [("complete",), ("interrupted",)]
    # tiny-co was finished and committed; tiny-labs stopped in its repositories page.
    assert ("tiny-co", "repositories", True) in stages and ("tiny-labs", "projects", True) in stages
    assert not any(ws == "tiny-labs" and stage == "repositories" for ws, stage, _ in stages)
    del sim.org.workspaces["tiny-labs"].repositories["experiments"].group_grants["ghost"]
    sim.org.touch()
    before = len(sim.simulator.request_log)
    resumed = sync(sim, db)
    assert resumed.resumed and resumed.sync_id == interrupted
    calls = [r.path for r in sim.simulator.request_log[before:]]
    # Nothing of tiny-co re-fetched: only its change control, a stage that runs once every workspace's
    # permissions are in (extraction/change_control.py), and was never reached.
    control = ("/branch-restrictions", "/effective-branching-model", "/override-settings", "/deploy-keys")
    assert not [p for p in calls if ("tiny-co/" in p or p.endswith("tiny-co")) and not p.endswith(control)]
    assert snapshot(db, resumed.sync_id) == snapshot(db, good.sync_id)


def test_faults_do_not_change_the_snapshot(make_sim, tmp_path) -> None:
    clean_sim = make_sim()
    clean = sync(clean_sim, tmp_path / "clean.duckdb")
    faults = Faults(
        seed=9, error_rate=0.05, burst_rate=0.02, burst_length=3, drop_rate=0.02, latency_ms=2, jitter_ms=2
    )
    noisy_sim = make_sim(faults=faults)
    noisy = sync(noisy_sim, tmp_path / "noisy.duckdb", max_retries=10)
    assert noisy.stats["retries"] > 0
    assert snapshot(tmp_path / "noisy.duckdb", noisy.sync_id) == snapshot(
        tmp_path / "clean.duckdb", clean.sync_id
    )


def test_bad_credentials_name_endpoint_and_never_leak(make_sim, tmp_path, caplog) -> None:
    sim = make_sim()
    secret = "ATATT3xNotTheRightToken9999"
    with pytest.raises(AuthenticationError) as excinfo:
        sync(sim, tmp_path / "w.duckdb", token=secret)
    assert "/2.0/user/workspaces" in str(excinfo.value) and secret not in str(excinfo.value)
    assert secret not in caplog.text
    raw = (tmp_path / "w.duckdb").read_bytes()
    assert secret.encode() not in raw and SIM_API_TOKEN.encode() not in raw


def test_an_entry_without_its_identity_is_skipped_and_reported(make_sim, tmp_path) -> None:
    """A group without a slug costs that group, not the snapshot: skipped, recorded with endpoint and page."""
    sim = make_sim()
    sim.org.workspaces["tiny-co"].groups["leads"].slug = ""  # the 1.0 payload now lacks the group's slug
    sim.org.touch()
    result = sync(sim, tmp_path / "w.duckdb", max_retries=0)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        status, anomalies = con.execute("SELECT status, anomalies FROM raw.syncs").fetchone()
        rows = con.execute("SELECT workspace_slug, endpoint, page, reason FROM raw.anomalies").fetchall()
        groups = con.execute("SELECT group_slug FROM raw.groups WHERE workspace_slug = 'tiny-co'").fetchall()
    assert status == "complete" and result.counts["anomalies"] == len(rows) == sum(
        json.loads(anomalies).values()
    )
    # The group itself, and its grant on project PAY (that permission list names the group by the same slug).
    assert sorted(rows) == [
        ("tiny-co", "/1.0/groups/tiny-co", 1, "entry without `slug`"),
        (
            "tiny-co",
            "/2.0/workspaces/tiny-co/projects/PAY/permissions-config/groups",
            1,
            "entry without `slug`",
        ),
    ]
    assert ("leads",) not in groups and ("developers",) in groups


def test_null_user_entries_are_skipped_and_the_rest_is_exact(make_sim, tmp_path) -> None:
    """`user: null` entries (how deleted accounts appear elsewhere in the API) are skipped one by one; every
    other row is what a clean sync writes, and each skipped entry is counted."""
    clean = sync(make_sim(), tmp_path / "clean.duckdb")
    odd_sim = make_sim(faults=Faults(seed=11, odd_entry_rate=0.1))
    odd = sync(odd_sim, tmp_path / "odd.duckdb")
    assert odd_sim.simulator.odd_entries > 0
    assert odd.counts["anomalies"] == odd_sim.simulator.odd_entries
    clean_rows = snapshot(tmp_path / "clean.duckdb", clean.sync_id)
    odd_rows = snapshot(tmp_path / "odd.duckdb", odd.sync_id)
    # One row less for each skipped entry and nothing else (users and their sightings derive from entries: not
    # counted).
    derived = ("users", "user_sightings")
    entries = [t for t in RAW if t not in ("anomalies", *derived)]
    assert sum(len(clean_rows[t]) - len(odd_rows[t]) for t in entries) == odd_sim.simulator.odd_entries
    assert all(set(odd_rows[t]) <= set(clean_rows[t]) for t in [*entries, *derived])
    with duckdb.connect(str(tmp_path / "odd.duckdb"), read_only=True) as con:
        reasons = {r[0] for r in con.execute("SELECT DISTINCT reason FROM raw.anomalies").fetchall()}
    assert reasons == {"entry without `user`"}


def test_a_malformed_page_still_fails_loudly(make_sim, tmp_path) -> None:
    sim = make_sim(faults=Faults(seed=2, malformed_rate=1.0))
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        sync(sim, tmp_path / "w.duckdb", max_retries=0)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM raw.syncs").fetchall() == [("failed",)]


def test_org_groups_are_read_from_the_admin_api_and_the_manifest_says_so(make_sim, tmp_path) -> None:
    """tiny-labs is administered from admin.atlassian.com: with an Admin API configured, its group members
    come from the organization's groups (by account id, turned into Bitbucket users); tiny-co's from
    /1.0/groups."""
    sim = make_sim()
    labs = sim.org.workspaces["tiny-labs"]
    labs.groups["researchers"].members.append(sim.user("svc").uuid)
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, requests_per_hour=1e7)
    admin = AtlassianAdminApi.connect(SIM_ORG_ID, SIM_ORG_API_KEY, sim.url, requests_per_hour=1e7)
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con:
        result = run_sync(client, con, ExtractionOptions(admin_api=admin))
        members = con.execute(
            "select workspace_slug, group_slug, user_uuid from raw.group_members where sync_id = ? "
            "and workspace_slug = 'tiny-labs' order by all",
            [result.sync_id],
        ).fetchall()
        manifest, calls = con.execute(
            "select group_sources, api_calls from raw.syncs where sync_id = ?", [result.sync_id]
        ).fetchone()
    assert result.group_sources == {"tiny-co": "bitbucket-1.0", "tiny-labs": "atlassian-admin-api"}
    assert json.loads(manifest) == result.group_sources
    assert members == sorted(("tiny-labs", "researchers", sim.user(n).uuid) for n in ("ben", "svc"))
    # The Admin API was asked, and its calls are counted in the manifest with Bitbucket's.
    searched = [r for r in sim.simulator.request_log if r.path.endswith("/users/search")]
    assert len(searched) == 1 and searched[0].credential == "org_api_key"
    assert json.loads(calls)["admin/v2/orgs/*/directories/*/users/search"] == 1


def test_a_new_sync_leaves_failed_and_pruned_syncs_as_they_are(make_sim, tmp_path) -> None:
    """Only running or interrupted syncs are resumed or abandoned; a pruned sync's manifest stays in the
    history."""
    sim, db = make_sim(), tmp_path / "w.duckdb"
    first = sync(sim, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE raw.syncs SET status = 'pruned' WHERE sync_id = ?", [first.sync_id])
        con.execute(
            "INSERT INTO raw.syncs (sync_id, started_at, status, error) VALUES ('f', now(), 'failed', 'x')"
        )
    second = sync(sim, db)
    assert not second.abandoned
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = dict(con.execute("SELECT sync_id, status FROM raw.syncs").fetchall())
    assert statuses == {first.sync_id: "pruned", "f": "failed", second.sync_id: "complete"}
