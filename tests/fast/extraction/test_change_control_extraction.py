"""Extracting change control (extraction/change_control.py) against the simulator: exact rows, the rolling
schedule with carried rows, 2FA, a workspace without the admin scopes, and a repository deleted mid-read."""

from __future__ import annotations

import random
from datetime import timedelta

import duckdb
import pytest
import requests

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.client.api import WorkspaceAccess
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.connection_check import check_connection
from bitbucket_assets.extraction.change_control import never_read_budget
from bitbucket_assets.extraction.extract import ExtractionOptions, names_workspace
from bitbucket_assets.extraction.refresh import RefreshPolicy
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_ACCESS_TOKEN, SIM_API_TOKEN
from bitbucket_simulator.faults import RateLimit
from bitbucket_simulator.model import PayloadShapes, Repository, new_uuid
from tests.support.extraction import sync


def _rows(db, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _client(sim, token: str = SIM_API_TOKEN, email: str | None = None) -> BitbucketClient:
    return BitbucketClient(Credentials.api_token(email or sim.email, token), sim.url, requests_per_hour=1e7)


def _sync(sim, db, days: int, token: str = SIM_API_TOKEN, email: str | None = None):
    with duckdb.connect(str(db)) as con:
        options = ExtractionOptions(refresh=RefreshPolicy(change_control_days=days))
        return run_sync(_client(sim, token, email), con, options)


def test_rows_are_exactly_the_simulators_rules(make_sim, tmp_path) -> None:
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    result = sync(sim, db)  # every repository's change control (tests/support/extraction.py)
    org = sim.org
    expected_rules = {
        (
            ws.slug,
            r.slug,
            rule.id,
            rule.kind,
            rule.branch_match_kind,
            rule.pattern,
            rule.branch_type,
            rule.value,
        )
        for ws in org.workspaces.values()
        for r in ws.repositories.values()
        for rule in r.branch_restrictions
    }
    got = _rows(
        db,
        "SELECT workspace_slug, repository_slug, restriction_id, kind, branch_match_kind, pattern, "
        "branch_type, value FROM raw.branch_restrictions WHERE sync_id = ?",
        [result.sync_id],
    )
    assert {(*g[:5], g[5] or "", *g[6:]) for g in got} == expected_rules and len(got) == len(expected_rules)
    exemptions = _rows(
        db,
        "SELECT b.repository_slug, b.kind, e.principal_type, e.principal_id "
        "FROM raw.branch_restriction_exemptions e JOIN raw.branch_restrictions b "
        "USING (sync_id, repository_uuid, restriction_id) WHERE e.sync_id = ? ORDER BY ALL",
        [result.sync_id],
    )
    ana, cleo = sim.user("ana").uuid, sim.user("cleo").uuid
    assert exemptions == sorted(
        [
            ("ledger", "restrict_merges", "group", "on-call"),
            ("payments-api", "push", "group", "developers"),
            ("payments-api", "push", "user", cleo),
            ("payments-api", "restrict_merges", "user", ana),
        ]
    )
    models = _rows(
        db,
        "SELECT repository_slug, production_branch, production_use_mainbranch, branching_model_overridden "
        "FROM raw.branching_models WHERE sync_id = ? ORDER BY 1",
        [result.sync_id],
    )
    assert models == [
        ("experiments", None, None, False),
        ("ledger", "release", False, False),
        ("orphan-repo", None, None, False),
        ("payments-api", "main", True, True),
        ("public-docs", None, None, False),
        ("runbooks", None, None, False),
    ]
    keys = _rows(
        db,
        "SELECT resource_type, resource_key, label, last_used IS NULL, added_by_name FROM raw.deploy_keys "
        "WHERE sync_id = ? ORDER BY ALL",
        [result.sync_id],
    )
    assert keys == [
        ("project", "PAY", "pay-ci", False, "Cleo Lead"),
        ("repository", "ledger", "old-backup", True, "Former user"),
        ("repository", "payments-api", "deploy-prod", False, "Ana Ruiz"),
    ]
    # Two-step verification, from /permissions with `fields` (no extra call); unknown in tiny-labs.
    tfa = dict(
        _rows(
            db,
            "SELECT workspace_slug || '/' || u.display_name, m.has_2fa_enabled FROM raw.workspace_members m "
            "JOIN raw.users u USING (sync_id, user_uuid) WHERE m.sync_id = ? AND u.display_name IN "
            "('Carl Contractor', 'Ana Ruiz', 'Lena Leaver')",
            [result.sync_id],
        )
    )
    assert tfa == {
        "tiny-co/Carl Contractor": False,
        "tiny-co/Ana Ruiz": True,
        "tiny-co/Lena Leaver": False,
        "tiny-labs/Ana Ruiz": None,
    }
    assert _rows(db, "SELECT DISTINCT change_control, two_step_source FROM raw.workspaces") == [
        ("readable", "permissions")
    ]
    assert not [r for r in sim.simulator.request_log if r.path.endswith("/members")]
    # The manifest counts the new tables.
    assert result.counts["branch_restrictions"] == len(expected_rules)
    assert result.counts["change_control_reads"] == 6 * 4 + 4


def test_rolling_schedule_spreads_the_first_pass_and_carries_the_rest(make_sim, tmp_path) -> None:
    """Two days' period over tiny's 6 repositories (tiny-co's 5 and tiny-labs' 1, one credential's day): 3 on
    the first day, the other 3 on the second, each row carried with the sync that read it; every repository
    is then at most 2 days old."""
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    first = _sync(sim, db, days=2)
    read = (
        "SELECT count(DISTINCT resource_id) FROM raw.change_control_reads WHERE sync_id = ? AND "
        "resource_type = 'repository' AND observed_sync_id {} sync_id"
    )
    assert _rows(db, read.format("="), [first.sync_id]) == [(3,)]
    assert _rows(db, read.format("<>"), [first.sync_id]) == [(0,)]
    second = _sync(sim, db, days=2)
    assert _rows(db, read.format("="), [second.sync_id]) == [(3,)]  # the 3 never read
    assert _rows(db, read.format("<>"), [second.sync_id]) == [(3,)]  # carried from the first sync
    # Every repository is covered now, and the snapshot's rules are the simulator's, carried or read.
    rules = _rows(
        db,
        "SELECT repository_slug, count(*), count(DISTINCT observed_sync_id) FROM raw.branch_restrictions "
        "WHERE sync_id = ? GROUP BY 1 ORDER BY 1",
        [second.sync_id],
    )
    counts = {
        r.slug: len(r.branch_restrictions)
        for ws in sim.org.workspaces.values()
        for r in ws.repositories.values()
        if r.branch_restrictions
    }
    assert {slug: n for slug, n, _ in rules} == counts
    coverage = _rows(
        db,
        "SELECT count(DISTINCT r.repository_uuid) FROM raw.repositories r JOIN raw.change_control_reads c "
        "ON c.sync_id = r.sync_id AND c.resource_id = r.repository_uuid WHERE r.sync_id = ?",
        [second.sync_id],
    )
    assert coverage == [(6,)]


class Days:
    """One sync a day of `workspaces` of the simulator's organisation (tiny-co alone unless told), change
    control every `n` days, on a simulated clock."""

    def __init__(
        self, sim, db, n: int, workspaces: tuple[str, ...] | None = ("tiny-co",), token_for: str = ""
    ):
        self.sim, self.db, self.n, self.workspaces = sim, db, n, workspaces
        self.clock = SimulatedClock(sim.org.now)
        # `token_for`: a workspace whose rules the simulator's workspace access token reads
        self.control = (
            BitbucketClient(
                Credentials.access_token(SIM_ACCESS_TOKEN), sim.url, requests_per_hour=1e7, clock=self.clock
            )
            if token_for
            else None
        )
        self.token_for = token_for or None

    def sync(self, after: timedelta = timedelta(days=1)):
        """One sync, then the clock moves on by `after` (a day unless told)."""
        client = BitbucketClient(
            Credentials.api_token(self.sim.email, SIM_API_TOKEN),
            self.sim.url,
            requests_per_hour=1e7,
            clock=self.clock,
        )
        with duckdb.connect(str(self.db)) as con:
            options = ExtractionOptions(
                workspaces=list(self.workspaces) if self.workspaces else None,
                refresh=RefreshPolicy(change_control_days=self.n),
                change_control_client=self.control,
                change_control_workspace=self.token_for,
            )
            result = run_sync(client, con, options)
        self.clock.advance(after)
        return result

    def create(self, workspace: str, count: int) -> None:
        ws = self.sim.org.workspaces[workspace]
        project = next(iter(ws.projects))
        with self.sim.simulator.lock:
            for n in range(count):
                slug, uuid = f"new-{n}", new_uuid(random.Random(n))
                ws.repositories[slug] = Repository(
                    uuid, slug, slug, project, self.clock.now(), self.clock.now()
                )
            self.sim.org.touch()

    def reasons(self, sync_id: str, workspace: str) -> list[tuple]:
        """(read_reason, repositories) of the repositories `sync_id` read in `workspace`."""
        return _rows(
            self.db,
            "SELECT read_reason, count(DISTINCT resource_id) FROM raw.change_control_reads WHERE sync_id = ? "
            "AND workspace_slug = ? AND resource_type = 'repository' AND observed_sync_id = sync_id "
            "GROUP BY 1 ORDER BY 1",
            [sync_id, workspace],
        )


def test_once_reads_fall_due_they_come_before_repositories_created_since(make_sim, tmp_path) -> None:
    """N = 2 days over tiny-co's five repositories, one sync a day on a simulated clock: the first pass takes
    two days; on the third, three repositories created meanwhile wait while the two reads of the first day
    that are now due go first, and they take only what is left of the day's share, ceil(8 / 2) = 4. Taken
    first, the new ones and the due ones landed on one day, over the share (`large`, N = 21, day 23)."""
    days = Days(make_sim(), tmp_path / "w.duckdb", n=2)
    days.sync(), days.sync()
    days.create("tiny-co", 3)
    third = days.sync()
    assert days.reasons(third.sync_id, "tiny-co") == [("due: 2 days old", 2), ("new", 2)]


def test_due_reads_take_at_most_a_quarter_over_the_share_and_the_rest_wait_a_day(make_sim, tmp_path) -> None:
    """A first sync longer than a day puts two days' reads in one day's window, and they fall due together
    (`large`, N = 21, day 23: 1,744 repositories, 14.0 h). N = 2 over tiny-co's five repositories, share
    ceil(5 / 2) = 3: the second sync runs 6 hours after the first (three read; then two, and one of the first
    three early); 40 hours later all five are due, and four are read, 1.25 shares, the oldest first. The one
    left is read the next day, still due."""
    days = Days(make_sim(), tmp_path / "w.duckdb", n=2)
    first = days.sync(after=timedelta(hours=6))
    second = days.sync(after=timedelta(hours=40))
    third = days.sync()
    assert days.reasons(third.sync_id, "tiny-co") == [("due: 2 days old", 4)]
    fourth = days.sync()
    assert ("due: 2 days old", 1) in days.reasons(fourth.sync_id, "tiny-co")
    read = "SELECT DISTINCT resource_id FROM raw.change_control_reads WHERE sync_id = ? AND "
    read += "observed_sync_id = sync_id AND resource_type = 'repository'"

    def read_by(result, reason: str = "") -> set[str]:
        rows = _rows(days.db, read + " AND read_reason LIKE ?", [result.sync_id, reason + "%"])
        return {r for (r,) in rows}

    on_third, on_fourth = read_by(third, "due: 2"), read_by(fourth, "due: 2")
    assert len(on_fourth) == 1 and not on_fourth & on_third
    assert on_fourth | on_third == {r.uuid for r in days.sim.org.workspaces["tiny-co"].repositories.values()}
    # The oldest first: the two read only by the first sync are read on the third day; the one that waits was
    # read by the second.
    assert read_by(first) - read_by(second) <= on_third and on_fourth <= read_by(second)


def test_repositories_never_read_get_a_quarter_of_the_share_when_due_reads_fill_it(
    make_sim, tmp_path
) -> None:
    """Once the first pass is through, the due reads leave free only what deleted repositories freed: a
    repository created then, with no place left in the day's share, would wait for ever (`large`, N = 21:
    coverage stuck at 97 % from day 23). N = 2 over tiny-co: the two repositories the second day read first
    are deleted and one is created; on the third day the two due reads fill the share, ceil(4 / 2) = 2, and
    the new one is read all the same (a quarter of the share, rounded up)."""
    sim = make_sim()
    days = Days(sim, tmp_path / "w.duckdb", n=2)
    days.sync()
    second = days.sync()
    assert days.reasons(second.sync_id, "tiny-co") == [("due: oldest", 1), ("new", 2)]
    read_new = _rows(
        days.db,
        "SELECT r.repository_slug FROM raw.change_control_reads c JOIN raw.repositories r ON r.sync_id = "
        "c.sync_id AND r.repository_uuid = c.resource_id WHERE c.sync_id = ? AND c.observed_sync_id = "
        "c.sync_id AND c.workspace_slug = 'tiny-co' AND c.read_reason = 'new' GROUP BY 1",
        [second.sync_id],
    )
    ws = sim.org.workspaces["tiny-co"]
    with sim.simulator.lock:
        for (slug,) in read_new:
            del ws.repositories[slug]
        sim.org.touch()
    days.create("tiny-co", 1)
    third = days.sync()
    assert days.reasons(third.sync_id, "tiny-co") == [("due: 2 days old", 2), ("new", 1)]
    coverage = _rows(
        days.db,
        "SELECT count(DISTINCT c.resource_id) FROM raw.change_control_reads c WHERE c.sync_id = ? AND "
        "c.workspace_slug = 'tiny-co' AND c.resource_type = 'repository'",
        [third.sync_id],
    )
    assert read_new and coverage == [(4,)]  # each repository of the snapshot: read today or carried


def test_the_credentials_day_reads_repositories_never_read_in_any_workspace_before_the_oldest(
    make_sim, tmp_path
) -> None:
    """The rate limit is the credential's: the day's share is over every workspace it reads. N = 2 over tiny
    (six repositories, three read on the first day), four repositories created in tiny-labs: on the second
    day the share, ceil(10 / 2) = 5, goes to five of the seven never read, in either workspace. With a share
    per workspace, tiny-co read one of its oldest early while tiny-labs kept one never read (`large`, N = 21:
    three workspaces of 1,300 repositories kept about 190 each never read; coverage stayed at 97 %)."""
    days = Days(make_sim(), tmp_path / "w.duckdb", n=2, workspaces=None)
    first = days.sync()
    read_first = days.reasons(first.sync_id, "tiny-co") + days.reasons(first.sync_id, "tiny-labs")
    assert sum(n for _, n in read_first) == 3
    days.create("tiny-labs", 4)
    second = days.sync()
    by_workspace = {ws: days.reasons(second.sync_id, ws) for ws in ("tiny-co", "tiny-labs")}
    assert [reason for reasons in by_workspace.values() for reason, _ in reasons] in (["new"], ["new", "new"])
    assert sum(n for reasons in by_workspace.values() for _, n in reasons) == 5


@pytest.mark.parametrize("alone", ["", "refused", "token"])
def test_a_workspace_whose_rules_were_not_readable_last_time_plans_alone(make_sim, tmp_path, alone) -> None:
    """A workspace where Bitbucket refused the rules in its last sync would hold places in the credential's
    plan that it never uses: it plans alone, as does one whose rules a second credential reads (its rate limit
    is its own). N = 2 over tiny: on the second day the pool's share, ceil(6 / 2) = 3, reads the three never
    read; with tiny-labs' last status planted "not readable", or a workspace access token for tiny-co, tiny-co
    reads its own share, ceil(5 / 2) = 3, and tiny-labs its own, 1."""
    sim = make_sim()
    days = Days(
        sim, tmp_path / "w.duckdb", n=2, workspaces=None, token_for="tiny-co" if alone == "token" else ""
    )
    first = days.sync()
    if alone == "refused":
        with duckdb.connect(str(days.db)) as con:
            con.execute(
                "UPDATE raw.workspaces SET change_control = 'not readable: planted' "
                "WHERE sync_id = ? AND workspace_slug = 'tiny-labs'",
                [first.sync_id],
            )
    second = days.sync()
    read = {ws: sum(n for _, n in days.reasons(second.sync_id, ws)) for ws in ("tiny-co", "tiny-labs")}
    assert sum(read.values()) == (4 if alone else 3)
    if alone:
        assert read == {"tiny-co": 3, "tiny-labs": 1}
    if alone == "token":  # the token read tiny-co's rules ahead (RulesPrefetch), and only tiny-co's
        token_reads = {
            r.path.split("/")[3] for r in sim.simulator.request_log if r.credential == "access_token"
        }
        assert token_reads == {"tiny-co"}


@pytest.mark.parametrize(
    ("share", "due", "never_read"),
    [
        (954, 0, 954),  # the first pass: the whole share
        (954, 860, 239),  # after it: what deleted repositories freed (94) is less than a quarter
        (954, 700, 254),  # what the due reads left, when more than a quarter
        (954, 1000, 193),  # up to 1.25 shares in all
        (954, 1236, 0),  # `large`, day 23: two days' reads due at once, over 1.25 shares already
        (2, 2, 1),
    ],
)
def test_never_read_repositories_get_a_quarter_share_up_to_a_quarter_over_the_share(
    share: int, due: int, never_read: int
) -> None:
    assert max(0, never_read_budget(share, share - due)) == never_read


@pytest.mark.parametrize(
    ("share", "due", "done", "read_new", "never_read"),
    [
        (954, 0, 900, 900, 54),  # the first pass resumed: what is left of the share, no quarter more
        (954, 0, 954, 954, 0),
        (954, 860, 100, 100, 139),  # after it, resumed: the quarter, less the new ones read before
        (954, 860, 239, 239, 0),
    ],
)
def test_a_resumed_sync_reads_no_more_never_read_repositories_than_one_that_ran_through(
    share: int, due: int, done: int, read_new: int, never_read: int
) -> None:
    assert max(0, never_read_budget(share, share - due - done, read_new)) == never_read


def test_without_admin_scopes_change_control_is_not_readable_and_the_sync_completes(
    make_sim, tmp_path
) -> None:
    sim = make_sim()
    reads = {
        "read:user:bitbucket",
        "read:workspace:bitbucket",
        "read:project:bitbucket",
        "read:repository:bitbucket",
        "read:permission:bitbucket",
    }
    sim.simulator.credentials.add_api_token("ro@tiny.example", "ro-token", sim.org.operator_uuid, reads)
    db = tmp_path / "w.duckdb"
    good = _sync(sim, db, days=1)  # the owner's full token first: the earlier observation
    result = _sync(sim, db, days=1, token="ro-token", email="ro@tiny.example")
    assert result.status == "complete"
    states = _rows(
        db, "SELECT workspace_slug, change_control FROM raw.workspaces WHERE sync_id = ?", [result.sync_id]
    )
    assert all(
        state.startswith("not readable: ") and "admin:repository:bitbucket" in state for _, state in states
    )
    # The last observation is kept, with the sync that read it.
    carried = _rows(
        db,
        "SELECT count(*), min(observed_sync_id), max(observed_sync_id) FROM raw.branch_restrictions "
        "WHERE sync_id = ?",
        [result.sync_id],
    )
    assert carried == [(15, good.sync_id, good.sync_id)]
    report = check_connection(_client(sim, "ro-token", "ro@tiny.example"))
    assert report.can_sync
    assert report.missing_for_change_control == {"admin:repository:bitbucket", "admin:project:bitbucket"}
    assert any("missing scopes for change control" in line for line in report.lines())


def test_two_step_verification_from_members_where_permissions_ignores_the_field(make_sim, tmp_path) -> None:
    sim = make_sim()
    sim.org.shapes = PayloadShapes(members_only_2fa=True)
    db = tmp_path / "w.duckdb"
    result = sync(sim, db)
    assert _rows(db, "SELECT DISTINCT two_step_source FROM raw.workspaces") == [("members",)]
    assert _rows(
        db,
        "SELECT count(*) FROM raw.workspace_members WHERE sync_id = ? AND has_2fa_enabled = false",
        [result.sync_id],
    ) == [(2,)]
    assert (
        len([r for r in sim.simulator.request_log if r.path.endswith("/members")]) == 2
    )  # one per workspace


def test_a_repository_deleted_during_the_reads_is_left_out(make_sim, tmp_path) -> None:
    sim = make_sim()
    ws = sim.org.workspaces["tiny-co"]
    ledger = ws.repositories["ledger"]

    # Deleted once its permission lists were read (its groups come in bulk: the users list is the last),
    # before its change control is: every change-control read of it answers 404, and so does the repository.
    def delete_ledger(record) -> None:
        if record.path.endswith(f"{ledger.uuid}/permissions-config/users") and "ledger" in ws.repositories:
            del ws.repositories["ledger"]
            sim.org.touch()

    sim.simulator.after_request.append(delete_ledger)
    db = tmp_path / "w.duckdb"
    result = sync(sim, db)
    assert result.status == "complete"
    tables = ("repositories", "repository_user_permissions", "branch_restrictions", "change_control_reads")
    for table, column in (
        (t, "resource_id" if t == "change_control_reads" else "repository_uuid") for t in tables
    ):
        assert _rows(
            db,
            f"SELECT count(*) FROM raw.{table} WHERE sync_id = ? AND {column} = ?",
            [result.sync_id, ledger.uuid],
        ) == [(0,)]
    reasons = _rows(db, "SELECT reason FROM raw.anomalies WHERE sync_id = ?", [result.sync_id])
    assert any("deleted while the sync ran" in r[0] for r in reasons)
    gone = [r for r in sim.simulator.request_log if ledger.uuid in r.path and r.status == 404]
    assert {r.path.rsplit("/", 1)[-1] for r in gone} >= {"branch-restrictions", "deploy-keys"}


def test_a_second_credential_reads_the_rules_of_its_workspace_with_its_own_rate_limit(
    make_sim, tmp_path
) -> None:
    """BITBUCKET_CHANGE_CONTROL_TOKEN: the workspace access token reads its workspace's branch restrictions,
    branching models and override settings (the simulator, like Bitbucket, counts them against the token's own
    rate limit); deploy keys and every other workspace stay on the main credential; the rows are those one
    credential reads, in the first sync (read in the change-control stage) and in the next (read ahead from
    its start)."""
    sim = make_sim()
    token_ws = next(iter(sim.org.workspaces))  # the simulator's access token belongs to its first workspace
    control = BitbucketClient(Credentials.access_token(SIM_ACCESS_TOKEN), sim.url, requests_per_hour=1e7)
    options = ExtractionOptions(
        refresh=RefreshPolicy(full=True), change_control_client=control, change_control_workspace=token_ws
    )
    with duckdb.connect(str(tmp_path / "two.duckdb")) as con:
        two = run_sync(_client(sim), con, options)
    log = sim.simulator.request_log
    first_calls = len(log)
    by_credential: dict[tuple[str, str], set[str]] = {}
    for record in log:
        for name in ("branch-restrictions", "effective-branching-model", "override-settings", "deploy-keys"):
            if record.path.endswith(name) and "/repositories/" in record.path:
                workspace = record.path.split("/")[3]
                by_credential.setdefault((workspace, name), set()).add(record.credential)
    rules = ("branch-restrictions", "effective-branching-model", "override-settings")
    assert all(by_credential[(token_ws, name)] == {"access_token"} for name in rules)
    assert by_credential[(token_ws, "deploy-keys")] == {"api_token"}
    others = {k: v for k, v in by_credential.items() if k[0] != token_ws}
    assert others and all(v == {"api_token"} for v in others.values())
    assert two.stats["calls"] == first_calls  # the token's calls are counted too

    # The next sync reads the token's lists from its start (RulesPrefetch), beside the other workspace's first
    # pass: waiting for the change-control stage, they left the main credential's repositories bucket idle
    # for as long as they took.
    with duckdb.connect(str(tmp_path / "two.duckdb")) as con:
        again = run_sync(_client(sim), con, options)
    second = log[first_calls:]
    assert again.stats["calls"] == len(second)
    control_lists = (*(f"/{name}" for name in rules), "/deploy-keys")
    first_token = next(i for i, r in enumerate(second) if r.credential == "access_token")
    other_first_pass = [
        i
        for i, r in enumerate(second)
        if r.path.startswith("/2.0/repositories/tiny-labs") and not r.path.endswith(control_lists)
    ]
    assert token_ws == "tiny-co" and first_token < max(other_first_pass)
    assert {r.path.rsplit("/", 1)[-1] for r in second if r.credential == "access_token"} == set(rules)

    one = sync(sim, tmp_path / "one.duckdb")
    table = "SELECT workspace_slug, repository_uuid, restriction_id, kind, value, observed_sync_id = sync_id "
    table += "FROM raw.branch_restrictions WHERE sync_id = ?"
    expected = sorted(_rows(tmp_path / "one.duckdb", table, [one.sync_id]))
    assert sorted(_rows(tmp_path / "two.duckdb", table, [two.sync_id])) == expected
    assert sorted(_rows(tmp_path / "two.duckdb", table, [again.sync_id])) == expected
    models = "SELECT repository_uuid, production_branch, development_branch FROM raw.branching_models "
    models += "WHERE sync_id = ?"
    assert sorted(_rows(tmp_path / "two.duckdb", models, [again.sync_id])) == sorted(
        _rows(tmp_path / "one.duckdb", models, [one.sync_id])
    )


def test_a_second_credential_without_admin_scopes_leaves_its_workspace_not_readable_and_stops_asking(
    make_sim, tmp_path
) -> None:
    """A token Bitbucket refuses the rules to (no repository scope): its workspace's change control is "not
    readable", the other workspace's is read, the sync completes, and after the first refusal the token's
    reads ahead stop."""
    sim = make_sim()
    token_ws = next(iter(sim.org.workspaces))
    sim.simulator.credentials.add_access_token("ro-access", "read only", token_ws, {"account"})
    control = BitbucketClient(Credentials.access_token("ro-access"), sim.url, requests_per_hour=1e7)
    sync(sim, tmp_path / "w.duckdb")  # an earlier sync: the next reads the lists ahead (RulesPrefetch)
    sim.simulator.request_log.clear()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        options = ExtractionOptions(
            refresh=RefreshPolicy(full=True), change_control_client=control, change_control_workspace=token_ws
        )
        result = run_sync(_client(sim), con, options)
    assert result.status == "complete"
    states = dict(
        _rows(
            tmp_path / "w.duckdb",
            "SELECT workspace_slug, change_control FROM raw.workspaces WHERE sync_id = ?",
            [result.sync_id],
        )
    )
    assert states[token_ws].startswith("not readable: ") and "repository:admin" in states[token_ws]
    assert all(state == "readable" for ws, state in states.items() if ws != token_ws)
    asked = [r for r in sim.simulator.request_log if r.credential == "access_token"]
    repositories = len(sim.org.workspaces[token_ws].repositories)
    assert asked and all(r.status == 403 for r in asked)
    # Every read is refused, and a thread that was refused stops the reads ahead before it takes another: at
    # most one read per thread, whatever the timing; the stage asks nothing again.
    assert len(asked) <= control.max_workers < 3 * repositories


def test_the_simulator_limits_each_credential_on_its_own(make_sim) -> None:
    """A workspace access token has a rate limit of its own: the API token exhausted, the token reads."""
    sim = make_sim(rate_limit=RateLimit(limit=2, window_seconds=3600))
    path = f"/2.0/repositories/{next(iter(sim.org.workspaces))}"
    main = requests.Session()
    main.auth = (sim.email, SIM_API_TOKEN)
    assert [main.get(sim.url + path, timeout=10).status_code for _ in range(3)] == [200, 200, 429]
    bearer = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}"}
    assert requests.get(sim.url + path, headers=bearer, timeout=10).status_code == 200


def test_check_probes_the_second_credential_and_names_a_refused_one(make_sim) -> None:
    """`check` reads the token's three lists once; a token Bitbucket refuses is a warning naming why (never
    the token), and the verdict stays what the main credential decides."""
    sim = make_sim()
    token_ws = next(iter(sim.org.workspaces))
    good = BitbucketClient(Credentials.access_token(SIM_ACCESS_TOKEN), sim.url, requests_per_hour=1e7)
    report = check_connection(_client(sim), control=good, control_workspace=token_ws)
    assert (
        f"change-control token (BITBUCKET_CHANGE_CONTROL_TOKEN) for {token_ws}: reads its branch "
        "restrictions, branching models and override settings, on a rate limit of its own"
    ) in report.lines()
    wrong = "ATCTT3xNotAToken0000"
    bad = BitbucketClient(Credentials.access_token(wrong), sim.url, requests_per_hour=1e7, max_retries=0)
    refused = check_connection(_client(sim), control=bad, control_workspace=token_ws)
    warning = [line for line in refused.lines() if line.startswith("warning: change-control token")]
    assert len(warning) == 1 and "401" in warning[0] and wrong not in "\n".join(refused.lines())
    assert refused.can_sync and refused.lines()[-1] == report.lines()[-1]
    # Named as a sync matches it: any case, or the workspace's {uuid}; a name no sync covers is a warning.
    uuid = sim.org.workspaces[token_ws].uuid
    for typed in (token_ws.upper(), uuid.upper()):
        assert report.lines() == check_connection(_client(sim), control=good, control_workspace=typed).lines()
    elsewhere = check_connection(_client(sim), control=good, control_workspace="not-a-workspace")
    assert [line for line in elsewhere.lines() if "BITBUCKET_CHANGE_CONTROL" in line] == [
        "warning: BITBUCKET_CHANGE_CONTROL_WORKSPACE (not-a-workspace) names no workspace a sync covers: the "
        "change-control token is not used"
    ]


@pytest.mark.parametrize(
    ("configured", "named"),
    [
        ("tiny-co", True),
        ("Tiny-Co", True),  # slugs are lower case: a capital typed by hand still names it
        (" tiny-co ", True),
        ("{5e7d0c2a-0000-4000-8000-00000000000a}", True),
        ("5E7D0C2A-0000-4000-8000-00000000000A", True),
        ("tiny-labs", False),
        ("{}", False),
        ("", False),
        (None, False),
    ],
)
def test_the_change_control_workspace_is_named_by_slug_or_uuid(configured, named) -> None:
    access = WorkspaceAccess("tiny-co", "{5e7d0c2a-0000-4000-8000-00000000000a}", "Tiny Co", True)
    assert names_workspace(configured, access) is named


def test_the_due_reads_ceiling_is_the_credentials_over_every_workspace_it_reads(make_sim, tmp_path) -> None:
    """The ceiling is over the credential's plan, not each workspace's: tiny-co (five repositories) and
    tiny-labs (one) read by one credential, N = 2, share ceil(6 / 2) = 3. As above, the second sync runs 6
    hours after the first and all six are due 40 hours later: four are read in all (1.25 shares), the oldest
    first in either workspace; a ceiling per workspace would have let tiny-co read four and tiny-labs
    its one."""
    days = Days(make_sim(), tmp_path / "w.duckdb", n=2, workspaces=None)
    first = days.sync(after=timedelta(hours=6))
    second = days.sync(after=timedelta(hours=40))
    third = days.sync()
    fourth = days.sync()
    read = (
        "SELECT DISTINCT resource_id FROM raw.change_control_reads WHERE sync_id = ? AND observed_sync_id = "
        "sync_id AND resource_type = 'repository' AND read_reason LIKE ?"
    )

    def read_by(result, reason: str = "") -> set[str]:
        return {r for (r,) in _rows(days.db, read, [result.sync_id, reason + "%"])}

    every = {r.uuid for ws in days.sim.org.workspaces.values() for r in ws.repositories.values()}
    assert len(every) == 6 and read_by(first) | read_by(second) == every
    on_third, on_fourth = read_by(third, "due: 2"), read_by(fourth, "due: 2")
    assert len(on_third) == 4 and on_fourth == every - on_third
    assert read_by(first) <= on_third  # the oldest first, whichever workspace they are in
