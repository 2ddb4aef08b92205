"""A wrong answer never reads as "deleted", and a refusal stays local (extraction/gone.py, read_groups).

- a 404 that says no API is hosted at the URL fails the sync, naming endpoint and body, and leaves nothing;
- a project or repository is left out only when its own read answers 404 too; a project deleted while the
  sync runs costs that project, not the sync;
- a workspace whose groups cannot be read is skipped with the reason (an error when BITBUCKET_WORKSPACES
  names it), and the other workspaces go on;
- a repository renamed between the listing and its list reads keeps its lists (read by `{uuid}`).
"""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.client import EndpointNotFoundError, PermissionDeniedError
from tests.support.extraction import sync


def _unroute(sim, suffix: str) -> None:
    """Take the simulator's routes ending in `suffix` away: Bitbucket's router then answers "There is no API
    hosted at this URL" there, as it does for a path no API serves (or a proxy in front of it)."""
    router = sim.simulator.app.app.router
    router.routes = [r for r in router.routes if not getattr(r, "path", "").endswith(suffix)]


def _statuses(db) -> list[tuple[str, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT status, (SELECT count(*) FROM raw.repositories) FROM raw.syncs ORDER BY started_at"
        ).fetchall()


def test_a_routing_404_on_every_permission_list_fails_the_sync_and_publishes_nothing(make_sim, tmp_path):
    """It used to read as "every repository was deleted while the sync ran": a complete, empty snapshot."""
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    sync(sim, db)
    _unroute(sim, "{repo_slug}/permissions-config/users")
    with pytest.raises(EndpointNotFoundError) as excinfo:
        sync(sim, db)
    message = str(excinfo.value)
    assert "HTTP 404 about no resource: Bitbucket says no API is hosted at this URL" in message
    assert '"detail":"There is no API hosted at this URL.' in message  # the body, quoted
    assert "/permissions-config/users, workspace tiny-co]" in message  # the endpoint
    assert excinfo.value.endpoint.startswith("/2.0/repositories/tiny-co/%7B")  # read by {uuid}
    assert _statuses(db) == [("complete", 6), ("failed", 6)]  # the failed sync left no row


def test_a_project_deleted_while_the_sync_runs_is_left_out_not_fatal(make_sim, tmp_path) -> None:
    sim = make_sim()
    ws = sim.org.workspaces["tiny-co"]

    def delete_orph_once_listed(record) -> None:
        # Listed, then deleted (with its repositories: Bitbucket deletes only empty projects) before its
        # permission lists are read.
        if record.path == "/2.0/workspaces/tiny-co/projects" and "ORPH" in ws.projects:
            with sim.simulator.lock:
                for slug in [s for s, r in ws.repositories.items() if r.project_key == "ORPH"]:
                    del ws.repositories[slug]
                del ws.projects["ORPH"]
                sim.org.touch()

    sim.simulator.after_request.append(delete_orph_once_listed)
    result = sync(sim, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        projects = con.execute(
            "SELECT project_key FROM raw.projects WHERE workspace_slug = 'tiny-co'"
        ).fetchall()
        [(reason, raw)] = con.execute("SELECT reason, raw FROM raw.anomalies").fetchall()
        lists = con.execute(
            "SELECT count(*) FROM raw.fetch_log "
            "WHERE resource_type = 'project' AND workspace_slug = 'tiny-co'"
        ).fetchone()[0]
    assert sorted(projects) == [("OPS",), ("PAY",)] and lists == 4
    assert reason.startswith("project deleted while the sync ran: /2.0/workspaces/tiny-co/projects/ORPH/")
    assert reason.endswith("and /2.0/workspaces/tiny-co/projects/ORPH answered 404")
    assert '"project":"ORPH"' in raw and result.counts["anomalies"] == 1


def test_a_list_404_while_the_project_itself_reads_fine_fails(make_sim, tmp_path) -> None:
    """A 404 in Bitbucket's error object that is not about the project (its own read answers 200)."""
    sim = make_sim()
    ws = sim.org.workspaces["tiny-co"]
    routes = sim.simulator.app.app.router.routes
    [users_list] = [
        r
        for r in routes
        if getattr(r, "path", "").endswith("{project_key}/permissions-config/users") and "GET" in r.methods
    ]
    original = users_list.app

    async def not_found_for_ops(scope, receive, send):
        if scope["path"].endswith("/projects/OPS/permissions-config/users"):
            from starlette.responses import JSONResponse

            from bitbucket_simulator.payloads import error_body

            return await JSONResponse(error_body("Not found"), status_code=404)(scope, receive, send)
        return await original(scope, receive, send)

    users_list.app = not_found_for_ops
    with pytest.raises(Exception, match=r"but the project tiny-co/OPS itself reads fine") as excinfo:
        sync(sim, tmp_path / "w.duckdb")
    assert "nothing was taken as deleted" in str(excinfo.value) and "OPS" in ws.projects


def test_a_workspace_whose_groups_are_refused_is_skipped_and_the_others_go_on(make_sim, tmp_path) -> None:
    sim = make_sim(groups_status={"tiny-labs": 403})
    result = sync(sim, tmp_path / "w.duckdb")
    assert result.workspaces == ["tiny-co"] and list(result.skipped) == ["tiny-labs"]
    assert result.skipped["tiny-labs"].startswith("its groups cannot be read (permission denied (HTTP 403)")
    tiny_labs = [r.path for r in sim.simulator.request_log if "tiny-labs" in r.path]
    assert tiny_labs == ["/1.0/groups/tiny-labs"]  # nothing else was asked of it


def test_naming_a_workspace_whose_groups_are_refused_fails_at_the_start(make_sim, tmp_path) -> None:
    sim = make_sim(groups_status={"tiny-labs": 405})
    with pytest.raises(PermissionDeniedError, match="BITBUCKET_WORKSPACES names tiny-labs, but its groups"):
        sync(sim, tmp_path / "w.duckdb", workspaces=["tiny-co", "tiny-labs"])
    assert [r.path for r in sim.simulator.request_log] == [
        "/2.0/user/workspaces",
        "/1.0/groups/tiny-co",
        "/1.0/groups/tiny-labs",
    ]


def test_a_repository_renamed_while_the_sync_runs_keeps_its_lists(make_sim, tmp_path) -> None:
    """Its lists are read by `{uuid}`, so a rename after the listing costs nothing (by slug it answered 404,
    and the repository left the snapshot for a day)."""
    sim = make_sim()
    ws = sim.org.workspaces["tiny-co"]

    def rename_once_listed(record) -> None:
        if record.path == "/2.0/repositories/tiny-co" and "payments-api" in ws.repositories:
            with sim.simulator.lock:
                repo = ws.repositories.pop("payments-api")
                repo.slug = "payments-core"
                ws.repositories["payments-core"] = repo
                sim.org.touch()

    sim.simulator.after_request.append(rename_once_listed)
    result = sync(sim, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        grants = con.execute(
            "SELECT repository_slug, count(*) FROM raw.repository_user_permissions GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert ("payments-api", 4) in grants and result.counts.get("anomalies", 0) == 0
