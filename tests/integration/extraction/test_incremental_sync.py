"""Incremental syncs (extraction/refresh.py): lists read when new, due or changed, the rest carried forward.

Each day is a real sync over HTTP on a simulated clock, then a real dbt run (the plan views and the marts)
where a test reads them; a first sync whose marts no test reads starts from a warehouse with the plan views
(`planned`) and runs none.
Two warehouses follow the same organisation: one incremental (N = 3 days), one `--full` every day.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials, ServerError
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.extraction.checks import permission_lists_fresh
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.raw_schema import create_raw_schema
from bitbucket_assets.extraction.refresh import (
    RefreshPolicy,
    WorkspaceLoad,
    choose_lists_instead,
    lists_instead_of_effective,
)
from bitbucket_assets.extraction.sync import SyncResult, run_sync
from bitbucket_assets.warehouse import plan_views
from bitbucket_assets.warehouse.dbt_runs import run_dbt
from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation
from bitbucket_simulator.model import Repository, new_uuid

SELECT = [
    "path:models/plan",
    "+fct_reconciliation_mismatches",
    "+dim_repositories",
    "+fct_grant_history",
    "fct_reconciliations",
]
# The `--full` warehouse is only compared with on effective access and history: it builds nothing else.
SELECT_FULL = ["path:models/plan", "+fct_effective_access", "+fct_grant_history"]
N = 3


@dataclass
class Warehouse:
    db: str
    clock: SimulatedClock
    policy: RefreshPolicy
    select: list[str] = field(default_factory=lambda: SELECT)
    results: list[SyncResult] = field(default_factory=list)

    def sync(self, url: str, email: str, build: bool = True, progress: tuple = (), **client_kw) -> SyncResult:
        client = BitbucketClient(
            Credentials.api_token(email, SIM_API_TOKEN), url, clock=self.clock, **client_kw
        )
        try:
            with duckdb.connect(self.db) as con:
                result = run_sync(
                    client, con, ExtractionOptions(refresh=self.policy, progress=list(progress))
                )
        finally:
            client.close()
        self.results.append(result)
        if not build:
            return result
        # As the assets run dbt: the next run reuses this parse of the project.
        done = run_dbt(self.db, "run", "--quiet", "--select", *self.select)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return result

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def access(self, repository: str, user_uuid: str) -> str | None:
        rows = self.query(
            "select permission from marts.fct_effective_access where resource_type = 'repository' "
            "and resource_key = ? and user_uuid = ?",
            [repository, user_uuid],
        )
        return rows[0][0] if rows else None

    def paths(self, repository: str, user_uuid: str) -> list[str]:
        rows = self.query(
            "select all_grant_paths from marts.fct_effective_access where resource_type = 'repository' "
            "and resource_key = ? and user_uuid = ?",
            [repository, user_uuid],
        )
        return rows[0][0] if rows else []

    def read_reason(self, repository: str) -> str | None:
        """Why the last sync read the repository's users list, or None: it was carried forward."""
        rows = self.query(
            "select f.read_reason, f.observed_sync_id = f.sync_id from raw.fetch_log f join "
            "raw.repositories r on r.sync_id = f.sync_id and r.repository_uuid = f.resource_id where "
            "f.sync_id = ? and r.repository_slug = ? and f.list = 'users'",
            [self.results[-1].sync_id, repository],
        )
        if not rows:
            return None  # not in this snapshot
        ((reason, read_today),) = rows  # every repository of the snapshot has its users list, read or carried
        return reason if read_today else None

    def mismatches(self) -> int:
        return self.query("select count(*) from marts.fct_reconciliation_mismatches")[0][0]


ACCESS = """
select workspace_slug, resource_type, resource_key, user_uuid, permission from marts.fct_effective_access
order by all
"""
PATHS = """
select workspace_slug, resource_type, resource_key, user_uuid, permission, all_grant_paths
from marts.fct_effective_access order by all
"""


@dataclass
class Scenario:
    incremental: Warehouse
    full: Warehouse
    org: object
    days: list[dict] = field(default_factory=list)  # per day: figures read right after both syncs

    def user(self, nickname: str):
        return next(u for u in self.org.users.values() if u.nickname == nickname)


def own_warehouse(directory: Path, now: datetime, policy: RefreshPolicy) -> Warehouse:
    """A test's warehouse in `warehouse_dir`, on a simulated clock starting at `now`."""
    return Warehouse(str(directory / "w.duckdb"), SimulatedClock(now), policy)


@pytest.fixture
def planned(warehouse_dir, tmp_path_factory) -> Path:
    """`warehouse_dir` with a `w.duckdb` that has the raw schema and the refresh plan's views, as a warehouse
    has them once the job's second sync built them: a test's first sync then needs no dbt run for the plan its
    second reads. Built once per worker and copied: a file of the same name has the same catalog, which the
    views name."""
    template = tmp_path_factory.getbasetemp() / "planned-w.duckdb"
    db = warehouse_dir / "w.duckdb"
    if template.exists():
        shutil.copy(template, db)
    else:
        with duckdb.connect(str(db)) as con:
            create_raw_schema(con)
        plan_views.build(str(db))  # in the target directory of `db`, whose parse the tests' own runs reuse
        shutil.copy(db, template)
    return warehouse_dir


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    tmp = tmp_path_factory.mktemp("incremental")
    org = load_organisation("tiny")
    start = org.now
    s = Scenario(
        Warehouse(str(tmp / "incr.duckdb"), SimulatedClock(start), RefreshPolicy(max_age_days=N)),
        Warehouse(str(tmp / "full.duckdb"), SimulatedClock(start), RefreshPolicy(full=True), SELECT_FULL),
        org,
    )
    ws = org.workspaces["tiny-co"]
    finn, ben = s.user("finn"), s.user("ben")
    runbooks, payments = ws.repositories["runbooks"], ws.repositories["payments-api"]
    changes = {
        # A direct grant that changes effective access: added, raised, removed.
        2: lambda: runbooks.user_grants.__setitem__(finn.uuid, "read"),
        3: lambda: runbooks.user_grants.__setitem__(finn.uuid, "admin"),
        4: lambda: runbooks.user_grants.pop(finn.uuid),
    }
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        for day in range(1, 6):
            if day in changes:
                changes[day]()
            if day == 2:
                # A redundant direct grant (ben already writes through `developers`): effective access is
                # unchanged.
                payments.user_grants[ben.uuid] = "read"
                # A new repository, with a direct grant.
                uuid = new_uuid(random.Random(2))
                ws.repositories["fresh"] = Repository(
                    uuid, "fresh", "fresh", "OPS", org.now, org.now, user_grants={finn.uuid: "write"}
                )
            org.touch()
            figures = {}
            for name, warehouse in (("incremental", s.incremental), ("full", s.full)):
                result = warehouse.sync(server.url, email)
                figures[name] = result
            inc = s.incremental
            s.days.append(
                {
                    "refresh": figures["incremental"].refresh,
                    "mismatches": inc.mismatches(),
                    "runbooks": (inc.access("runbooks", finn.uuid), inc.read_reason("runbooks")),
                    "fresh": (inc.access("fresh", finn.uuid), inc.read_reason("fresh")),
                    "ben_paths": inc.paths("payments-api", ben.uuid),
                    "payments_reason": inc.read_reason("payments-api"),
                    "access_equal": inc.query(ACCESS) == s.full.query(ACCESS),
                    "paths_equal": inc.query(PATHS) == s.full.query(PATHS),
                }
            )
            org.now += timedelta(days=1)
            for warehouse in (s.incremental, s.full):
                warehouse.clock.advance(max(0.0, (org.now - warehouse.clock.now()).total_seconds()))
    return s


def test_the_first_sync_reads_everything_and_later_ones_carry_most_lists_forward(scenario) -> None:
    first = scenario.days[0]["refresh"]
    assert {ws: r["mode"] for ws, r in first.items()} == {"tiny-co": "full", "tiny-labs": "full"}
    assert (
        first["tiny-co"]["read"] == {"full": 5} and first["tiny-co"]["why"] == "first sync of this workspace"
    )
    for day in scenario.days[1:]:
        refresh = day["refresh"]["tiny-co"]
        assert refresh["mode"] == "incremental"
        read = sum(refresh["read"].values())
        assert read + refresh["carried"] == 5 + 1  # tiny-co's five repositories and the new one from day 2 on
        assert refresh["carried"] >= 1  # something was not read again
        assert set(refresh["read"]) <= {"new", "due", "changed"}


def test_effective_access_equals_bitbucket_every_day(scenario) -> None:
    assert [day["mismatches"] for day in scenario.days] == [0] * 5
    # And equals a full sync of the same day, user by user and permission by permission.
    assert all(day["access_equal"] for day in scenario.days)


def test_a_direct_grant_added_changed_or_removed_is_in_the_marts_the_same_day(scenario) -> None:
    runbooks = [day["runbooks"] for day in scenario.days]
    assert [access for access, _ in runbooks] == [None, "read", "admin", None, None]
    reasons = [reason for _, reason in runbooks[1:4]]
    # Read because Bitbucket's effective list disagreed with the prediction (or, on its rolling day, as due).
    assert all(r is not None and r.split(":")[0] in ("changed", "due") for r in reasons), reasons
    assert any(r.startswith("changed: effective access differs for 1 user") for r in reasons), reasons


def test_a_change_that_does_not_alter_access_is_seen_within_n_days(scenario) -> None:
    # Ben's redundant direct read on payments-api (he writes through `developers`) appears by day 2 + N at the
    # latest, when the repository is due; until then its lists are carried forward, and only the paths differ
    # from a full sync.
    seen = [i for i, day in enumerate(scenario.days) if "direct: read" in day["ben_paths"]]
    assert seen and seen[0] <= 1 + N, [day["ben_paths"] for day in scenario.days]
    assert scenario.days[seen[0]]["payments_reason"].startswith("due: ")
    for day in scenario.days[1 : seen[0]]:
        assert day["payments_reason"] is None and not day["paths_equal"]
    assert all(day["paths_equal"] for day in scenario.days[seen[0] :])


def test_a_new_repository_is_complete_on_its_first_day(scenario) -> None:
    assert scenario.days[1]["fresh"] == ("write", "new")


def test_every_repository_says_when_its_lists_were_read_and_none_is_older_than_n_days(scenario) -> None:
    rows = scenario.incremental.query(
        "select repository_slug, permissions_carried_forward, epoch(synced_at - permissions_read_at) / 86400 "
        "from marts.dim_repositories order by all"
    )
    assert len(rows) == 7 and all(age is not None and age <= N for _, _, age in rows), rows
    assert any(carried for _, carried, _ in rows)
    checks = scenario.incremental.query(
        "select count(*) from raw.fetch_log f join raw.syncs s using (sync_id) where s.status = 'complete' "
        "and f.fetched_at < s.started_at - to_days(?)",
        [N],
    )
    assert checks == [(0,)]


def test_history_does_not_invent_changes_on_days_a_list_was_carried(scenario) -> None:
    # Same versions as the full warehouse except ben's redundant path, which opens when it is first read.
    history = "select count(*), count(*) filter (where valid_to is not null) from marts.fct_grant_history"
    ((incremental_versions, incremental_closed),) = scenario.incremental.query(history)
    ((full_versions, full_closed),) = scenario.full.query(history)
    assert (incremental_versions, incremental_closed) == (full_versions, full_closed)
    reopened = scenario.incremental.query(
        "select grant_key from marts.fct_grant_history group by grant_key having count(*) > 1 "
        "except select grant_key from marts.fct_grant_history where resource_key = 'runbooks'"
    )
    assert reopened == []


def test_group_privileges_refused_reads_group_lists_per_repository_and_carries_them(planned) -> None:
    org = load_organisation("tiny")
    warehouse = own_warehouse(planned, org.now, RefreshPolicy(max_age_days=30))
    with SimulatorServer(Simulator(org, group_privileges_status=404)) as server:
        email = org.users[org.operator_uuid].email
        warehouse.sync(server.url, email, build=False)  # the plan is there
        org.now += timedelta(days=1)
        warehouse.clock.advance(timedelta(days=1))
        org.workspaces["tiny-co"].repositories["orphan-repo"].group_grants["leads"] = "write"
        org.touch()
        result = warehouse.sync(server.url, email)
    cleo = next(u for u in org.users.values() if u.nickname == "cleo")
    assert warehouse.access("orphan-repo", cleo.uuid) == "write" and warehouse.mismatches() == 0
    assert warehouse.read_reason("orphan-repo").startswith(("changed: ", "due: "))
    assert result.refresh["tiny-co"]["carried"] >= 3
    carried_groups = warehouse.query(
        "select count(*) from raw.repository_group_permissions where sync_id = ? and observed_sync_id <> "
        "sync_id",
        [result.sync_id],
    )[0][0]
    assert carried_groups >= 1  # group lists read per repository are carried too


def test_a_repository_deleted_while_the_sync_runs_or_between_syncs_leaves_the_snapshot(warehouse_dir) -> None:
    org = load_organisation("tiny")
    ws = org.workspaces["tiny-co"]
    finn = next(u for u in org.users.values() if u.nickname == "finn")
    warehouse = own_warehouse(warehouse_dir, org.now, RefreshPolicy(max_age_days=30))
    simulator = Simulator(org)

    def delete_ledger_once_listed(event) -> None:
        # The listing has committed `ledger`; its lists are read only in the second pass, after the plan.
        if (event.workspace, event.stage, event.finished) == ("tiny-co", "repositories", True):
            with simulator.lock:
                ws.repositories.pop("ledger", None)
                org.touch()

    with SimulatorServer(simulator) as server:
        email = org.users[org.operator_uuid].email
        warehouse.sync(server.url, email)
        ledger = ws.repositories["ledger"].uuid
        assert warehouse.query(
            "select count(*) from marts.fct_effective_access where resource_id = ?", [ledger]
        )[0][0]
        for day in (2, 3):
            org.now += timedelta(days=1)
            warehouse.clock.advance(timedelta(days=1))
            if day == 2:
                ws.repositories["ledger"].user_grants[finn.uuid] = (
                    "admin"  # the plan will want its lists today
                )
            else:
                runbooks = ws.repositories.pop("runbooks").uuid  # deleted between two syncs
            org.touch()
            result = warehouse.sync(
                server.url, email, progress=[delete_ledger_once_listed] if day == 2 else ()
            )
            assert warehouse.mismatches() == 0  # run_sync returned: the snapshot is complete
            refresh = result.refresh["tiny-co"]
            # ledger gone, then runbooks too
            assert sum(refresh["read"].values()) + refresh["carried"] == 6 - day
        # (its lists are read by {uuid}, and the simulator logs the decoded path)
        path = f"/2.0/repositories/tiny-co/{ledger}"
        reads = simulator.calls("GET", f"{path}/permissions-config/users")
        confirmations = [r.status for r in simulator.calls("GET", path) if r.path == path]
    # Day 2: listed, then its list answered 404, and so did the repository itself; it is not in that snapshot
    # and the anomaly says why.
    assert [r.status for r in reads][-1] == 404 and confirmations == [404]
    day2 = warehouse.results[1].sync_id
    for table, column in (
        ("repositories", "repository_uuid"),
        ("fetch_log", "resource_id"),
        ("effective_repository_permissions", "repository_uuid"),
    ):
        assert warehouse.query(
            f"select count(*) from raw.{table} where sync_id = ? and {column} = ?", [day2, ledger]
        ) == [(0,)], table
    quoted = ledger.replace("{", "%7B").replace("}", "%7D")
    assert warehouse.query("select workspace_slug, reason from raw.anomalies where sync_id = ?", [day2]) == [
        (
            "tiny-co",
            f"repository deleted while the sync ran: /2.0/repositories/tiny-co/{quoted}/permissions-config/"
            f"users and /2.0/repositories/tiny-co/{quoted} answered 404",
        )
    ]
    # Neither repository is in the marts any more, and every version of their grants is closed.
    for uuid in (ledger, runbooks):
        (counts,) = warehouse.query(
            "select (select count(*) from marts.fct_effective_access where resource_id = $1), "
            "(select count(*) from marts.dim_repositories where repository_uuid = $1), "
            "(select count(*) from marts.fct_grant_history where resource_id = $1 and valid_to is null), "
            "(select count(*) from marts.fct_grant_history where resource_id = $1 and valid_to is not null)",
            [uuid],
        )
        assert counts[:3] == (0, 0, 0) and counts[3] > 0, counts


def test_a_repository_created_after_the_bulk_group_list_reads_its_own_groups_list(warehouse_dir) -> None:
    # A group with `auto_add` reaches a new repository from its creation; the bulk list, read earlier, cannot
    # know.
    org = load_organisation("tiny")
    ws = org.workspaces["tiny-co"]
    warehouse = own_warehouse(warehouse_dir, org.now, RefreshPolicy(max_age_days=30))
    simulator = Simulator(org)

    def create_once_the_bulk_list_is_answered(record) -> None:
        if record.path.rstrip("/") == "/1.0/group-privileges/tiny-co" and "late" not in ws.repositories:
            with simulator.lock:
                now = warehouse.clock.now()
                ws.repositories["late"] = Repository(
                    new_uuid(random.Random(5)),
                    "late",
                    "late",
                    "OPS",
                    now,
                    now,
                    group_grants={"developers": "write"},
                )
                org.touch()

    simulator.after_request.append(create_once_the_bulk_list_is_answered)
    with SimulatorServer(simulator) as server:
        result = warehouse.sync(server.url, email=org.users[org.operator_uuid].email)
    late = ws.repositories["late"]
    # Developers reach OPS only through this grant; the marts give Bitbucket's own answer for every user.
    truth = ws.effective_repository_permissions(late)
    assert {u: p for u, p in truth.items() if p != "none"} and "write" in truth.values()
    ours = dict(
        warehouse.query(
            "select user_uuid, permission from marts.fct_effective_access where resource_id = ?", [late.uuid]
        )
    )
    assert ours == {u: p for u, p in truth.items() if p != "none"}
    lists = warehouse.query(
        "select list, read_reason from raw.fetch_log where sync_id = ? and resource_id = ? order by list",
        [result.sync_id, late.uuid],
    )
    assert lists == [("groups", "full"), ("users", "full")]  # read on its own, not "bulk"
    bulk = warehouse.query(
        "select count(*) from raw.fetch_log where sync_id = ? and workspace_slug = 'tiny-co' "
        "and read_reason = 'bulk'",
        [result.sync_id],
    )[0][0]
    assert bulk == 5  # tiny-co's other repositories still came from the bulk list


def test_an_interrupted_incremental_sync_resumes_and_completes(planned) -> None:
    org = load_organisation("tiny")
    warehouse = own_warehouse(planned, org.now, RefreshPolicy(max_age_days=30))
    finn = next(u for u in org.users.values() if u.nickname == "finn")
    runbooks = org.workspaces["tiny-co"].repositories["runbooks"]
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        warehouse.sync(server.url, email, build=False)  # the plan is there
        org.now += timedelta(days=1)
        warehouse.clock.advance(timedelta(days=1))
        runbooks.user_grants[finn.uuid] = "write"
        # A grant to an account the simulator cannot render: the effective list (fetched on its own thread)
        # answers fails every time, and the sync stops, resumable.
        runbooks.user_grants["{00000000-0000-0000-0000-00000000dead}"] = "read"
        org.touch()
        with pytest.raises(ServerError, match=r"\[/2.0/workspaces/tiny-co/permissions/repositories"):
            warehouse.sync(server.url, email, max_retries=1, backoff_base=0.01, backoff_max=0.02)
        assert warehouse.query("select status from raw.syncs order by started_at") == [
            ("complete",),
            ("interrupted",),
        ]
        del runbooks.user_grants["{00000000-0000-0000-0000-00000000dead}"]
        org.touch()
        resumed = warehouse.sync(server.url, email)
    assert resumed.resumed and resumed.refresh["tiny-co"]["mode"] == "incremental"
    assert warehouse.access("runbooks", finn.uuid) == "write" and warehouse.mismatches() == 0


def test_the_freshness_check_names_a_list_older_than_n_days() -> None:
    with duckdb.connect() as con:
        create_raw_schema(con)
        con.execute(
            "insert into raw.syncs (sync_id, started_at, status, options) values "
            "('s2', '2026-03-10 00:00:00+00', 'running', '{\"max_age_days\": 3}')"
        )
        for rid, read in (("{fresh}", "2026-03-08 00:00:00+00"), ("{stale}", "2026-03-06 23:00:00+00")):
            con.execute(
                "insert into raw.fetch_log values ('s2', '{w}', 'acme', 'repository', ?, 'users', 1, ?, "
                "'s1', 'due')",
                [rid, read],
            )
        outcome = permission_lists_fresh(con, "s2")
    assert not outcome.passed and outcome.metadata["stale_count"] == 1
    assert outcome.metadata["stale"] == ["acme repository {stale} users read 2026-03-06 23:00 UTC"]
    assert "within 3 days" in outcome.description


def test_when_the_effective_list_costs_more_than_the_lists_every_list_is_read_and_nothing_is_reconciled(
    planned,
) -> None:
    org = load_organisation("tiny")
    for repository in org.workspaces["tiny-co"].repositories.values():
        repository.group_grants["everyone"] = (
            "read"  # 100 members on each of 5 repositories: 6 pages > 5 lists
        )
    org.touch()
    warehouse = own_warehouse(planned, org.now, RefreshPolicy(max_age_days=30))
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        warehouse.sync(server.url, email, build=False)  # the plan is there
        org.now += timedelta(days=1)
        warehouse.clock.advance(timedelta(days=1))
        before = len(server.simulator.request_log)
        result = warehouse.sync(server.url, email)
        calls = [r.path for r in server.simulator.request_log[before:]]
    refresh = result.refresh["tiny-co"]
    assert refresh["mode"] == "full" and refresh["read"] == {"full": 5}
    assert "costs more than every repository's lists (5 calls)" in refresh["why"]
    assert "/2.0/workspaces/tiny-co/permissions/repositories" not in calls  # read on day 1 only
    assert "/2.0/workspaces/tiny-labs/permissions/repositories" in calls
    assert result.refresh["tiny-labs"]["mode"] == "incremental"
    lists = dict(warehouse.query("select workspace_slug, effective_list from marts.dim_workspaces"))
    assert lists["tiny-labs"] == "read" and lists["tiny-co"].startswith(
        "not read: Bitbucket's effective list (about"
    )
    assert warehouse.mismatches() == 0
    assert warehouse.query(
        "select compared_workspaces from marts.fct_reconciliations order by synced_at desc limit 1"
    ) == [(["tiny-labs"],)]


def test_a_day_over_the_target_moves_workspaces_from_the_effective_list_to_their_lists(planned) -> None:
    org = load_organisation("tiny")
    for repository in list(org.workspaces["tiny-co"].repositories.values())[:3]:
        repository.group_grants["everyone"] = "read"  # 100 members: tiny-co's effective list is 5 pages
    org.touch()
    warehouse = own_warehouse(planned, org.now, RefreshPolicy(target_hours=12))
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        warehouse.sync(server.url, email, build=False)  # the plan is there
        with duckdb.connect(warehouse.db) as con:
            workspaces = ["tiny-co", "tiny-labs"]
            assert lists_instead_of_effective(con, workspaces, RefreshPolicy(target_hours=12), 900) == {}
            # The effective lists (6 pages) and the other calls (20) beside, 26 calls, outlast the workspaces'
            # own work (the 20 other calls and 4 in the repositories bucket): 0.029 h at 900/h, over a 0.01 h
            # target. tiny-labs's one list instead of its one page makes it 25 and 25; tiny-co's five lists
            # would make the workspaces' own work the longer one (28), so it keeps its effective list.
            moved = lists_instead_of_effective(con, workspaces, RefreshPolicy(target_hours=0.01), 900)
        assert list(moved) == ["tiny-labs"], moved
        assert "over the 0.01 h target" in moved["tiny-labs"]
        org.now += timedelta(days=1)
        warehouse.clock.advance(timedelta(days=1))
        warehouse.policy = RefreshPolicy(target_hours=0.01)
        before = len(server.simulator.request_log)
        result = warehouse.sync(server.url, email)
        calls = [r.path for r in server.simulator.request_log[before:]]
    assert [c for c in calls if c.endswith("/permissions/repositories")] == [
        "/2.0/workspaces/tiny-co/permissions/repositories"
    ] * 5
    assert {ws: r["mode"] for ws, r in result.refresh.items()} == {
        "tiny-co": "incremental",
        "tiny-labs": "full",
    }
    lists = dict(warehouse.query("select workspace_slug, effective_list from marts.dim_workspaces"))
    assert lists["tiny-co"] == "read"
    assert lists["tiny-labs"].startswith("not read: with every effective list the sync would take about")
    # Reconciled where the effective list was read, and exact there.
    assert warehouse.query(
        "select compared_workspaces, mismatches, passed from marts.fct_reconciliations "
        "order by synced_at desc limit 1"
    ) == [(["tiny-co"], 0, True)]


def test_a_workspace_not_reconciled_keeps_the_size_of_its_last_effective_list_for_the_next_estimate(
    warehouse_dir,
) -> None:
    org = load_organisation("tiny")
    for repository in list(org.workspaces["tiny-co"].repositories.values())[:3]:
        repository.group_grants["everyone"] = (
            "read"  # as above: tiny-labs reads its lists on a day over the target
        )
    org.touch()
    warehouse = own_warehouse(warehouse_dir, org.now, RefreshPolicy(target_hours=0.01))
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        for day in range(3):
            if day:
                org.now += timedelta(days=1)
                warehouse.clock.advance(timedelta(days=1))
            warehouse.sync(server.url, email, build=False)  # no plan needed: every workspace reads its lists
    rows = warehouse.query(
        "select w.sync_id, w.workspace_slug, w.effective_list = 'read', w.effective_pairs, "
        "(select count(*) from raw.effective_repository_permissions e where e.sync_id = w.sync_id "
        " and e.workspace_slug = w.workspace_slug) from raw.workspaces w join raw.syncs s using (sync_id) "
        "order by s.started_at, w.workspace_slug"
    )
    first = {ws: pairs for _, ws, read, pairs, rows_read in rows[:2]}
    assert all(read and pairs == rows_read > 0 for _, _, read, pairs, rows_read in rows[:2])
    # On days 2 and 3 tiny-labs reads no effective list (over the target), and still estimates from day 1's
    # size: the decision does not flip back on the day after.
    assert [(ws, read, pairs, rows_read) for _, ws, read, pairs, rows_read in rows[2:]] == [
        ("tiny-co", True, first["tiny-co"], first["tiny-co"]),
        ("tiny-labs", False, first["tiny-labs"], 0),
    ] * 2


def test_the_target_moves_workspaces_while_their_lists_shorten_the_day() -> None:
    """The effective lists run one after another beside every workspace's own work. Shaped like `large`: with
    every effective list the other bucket is the busier one (12.7 h); reading a small workspace's lists
    instead moves its calls into the idle repositories bucket, until the day fits. The main workspace never
    moves: its lists would make the repositories bucket the longer one."""
    main = WorkspaceLoad("main", effective_pages=8_500, lists=16_000, other=900, pages=160, due=2_286)
    small = [
        WorkspaceLoad(f"small-{i}", effective_pages=600, lists=1_333, other=70, pages=14, due=191)
        for i in range(3)
    ]
    chosen = choose_lists_instead([main, *small], target_hours=12, requests_per_hour=900)
    assert list(chosen) == ["small-0", "small-1"]
    assert chosen["small-0"].startswith("with every effective list the sync would take about 12.7 h")
    assert chosen["small-0"].endswith("make it 12.0 h")
    assert chosen["small-1"].endswith("make it 11.3 h")
    # Over any target: every small workspace moves (10.7 h), and the main one still does not.
    assert list(choose_lists_instead([main, *small], target_hours=1, requests_per_hour=900)) == [
        "small-0",
        "small-1",
        "small-2",
    ]
    # The estimate keeps 5 % in hand for growth: 12.7 h is over a 13 h target less 5 %, not over 14 h less 5
    # %.
    assert list(choose_lists_instead([main, *small], target_hours=13, requests_per_hour=900)) == ["small-0"]
    assert choose_lists_instead([main, *small], target_hours=14, requests_per_hour=900) == {}
