"""Who can change production code, end to end on `tiny` (its change control: orgs/tiny.yaml): two days of the
sync job, the second after a rule was removed, an exemption added and a rule weakened. Exact rows of
`fct_change_rights`, the change events with the time they were observed, history, deploy keys and 2FA."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_simulator import Simulator, SimulatorServer, load_organisation
from tests.support.warehouses import built_in_the_workers_dir, run_pipeline

FULL = {"ops": {"bitbucket_raw_snapshot": {"config": {"full": True}}}}


@pytest.fixture(scope="module")
def change_history(tmp_path_factory) -> tuple[str, object]:
    org = load_organisation("tiny")
    keep = Path(tmp_path_factory.mktemp("change")) / "w.duckdb"
    with built_in_the_workers_dir(tmp_path_factory, keep) as db:
        _two_days(org, db)
    return str(keep), org


def _two_days(org, db: str) -> None:
    with duckdb.connect(db) as con:
        create_provisioning_tables(con)
        # An administrator checked the projects: OPS enforces a project rule (which no API serves).
        con.execute(
            "INSERT INTO provisioning.project_branch_rules VALUES ('tiny-co', 'PAY', false, 'olga', "
            "'2026-03-01'), ('tiny-co', 'ORPH', false, 'olga', '2026-03-01'), ('tiny-co', 'OPS', true, "
            "'olga', '2026-03-01'), ('tiny-labs', 'LAB', false, 'olga', '2026-03-01')"
        )
    ws = org.workspaces["tiny-co"]
    dev = next(u for u in org.users.values() if u.nickname == "dev")
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        assert run_pipeline(server.url, email, db, run_config=FULL).success
        payments, ledger = ws.repositories["payments-api"], ws.repositories["ledger"]
        payments.branch_restrictions = [r for r in payments.branch_restrictions if r.kind != "force"]
        next(r for r in payments.branch_restrictions if r.kind == "push").users.append(dev.uuid)
        next(r for r in ledger.branch_restrictions if r.kind == "require_approvals_to_merge").value = 1
        org.touch()
        assert run_pipeline(server.url, email, db, run_config=FULL).success


def _query(db: str, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


T, F, U = True, False, None
# (repository, user, permission, rules_fully_readable, can_push, can_merge, can_merge_without_review,
#  can_force_push, can_delete, can_change_alone)
EXPECTED = [
    ("experiments", "Access Sync Bot", "admin", T, F, T, F, F, F, F),
    ("experiments", "Ben Okafor", "write", T, F, T, F, F, F, F),
    ("ledger", "Access Sync Bot", "admin", T, T, F, F, T, F, T),
    ("ledger", "Ana Ruiz", "admin", T, T, F, F, T, F, T),
    ("ledger", "Ben Okafor", "admin", T, T, T, T, T, F, T),
    ("ledger", "Cleo Lead", "write", T, T, F, F, T, F, T),
    ("ledger", "Olga Owner", "admin", T, T, F, F, T, F, T),
    ("ledger", 'Zoë O\'Brien "Zed" Łukasiewicz', "admin", T, T, T, T, T, F, T),
    ("orphan-repo", "Access Sync Bot", "admin", T, T, T, T, T, T, T),
    ("orphan-repo", "Olga Owner", "admin", T, T, T, T, T, T, T),
    ("payments-api", "Access Sync Bot", "admin", T, F, F, F, F, F, F),
    ("payments-api", "Ana Ruiz", "admin", T, T, T, F, T, T, T),
    ("payments-api", "Ben Okafor", "write", T, T, F, F, T, T, T),
    ("payments-api", "Carl Contractor", "write", T, F, F, F, F, F, F),
    ("payments-api", "Cleo Lead", "write", T, T, F, F, T, T, T),
    ("payments-api", "Deploy token", "write", T, F, F, F, F, F, F),
    ("payments-api", "Dev Only-Direct", "write", T, T, F, F, T, T, T),
    ("payments-api", "Lena Leaver", "write", T, T, F, F, T, T, T),
    ("payments-api", "Olga Owner", "admin", T, F, F, F, F, F, F),
    ("public-docs", "Access Sync Bot", "admin", T, T, T, T, T, T, T),
    ("public-docs", "Olga Owner", "admin", T, T, T, T, T, T, T),
    ("runbooks", "Access Sync Bot", "admin", F, U, U, U, U, U, U),
    ("runbooks", "Ben Okafor", "write", F, U, U, U, U, U, U),
    ("runbooks", "Olga Owner", "admin", F, U, U, U, U, U, U),
    ("runbooks", "Olive Outside", "write", F, U, U, U, U, U, U),
    ("runbooks", 'Zoë O\'Brien "Zed" Łukasiewicz', "write", F, U, U, U, U, U, U),
]


def test_change_rights_are_exactly_the_rules(change_history) -> None:
    db, _ = change_history
    rows = _query(
        db,
        "SELECT repository_slug, user_display_name, permission, rules_fully_readable, can_push, can_merge, "
        "can_merge_without_review, can_force_push, can_delete, can_change_alone FROM marts.fct_change_rights "
        "ORDER BY 1, 2",
    )
    assert rows == EXPECTED


def test_each_right_says_the_path_behind_it(change_history) -> None:
    db, _ = change_history
    paths = {
        (r[0], r[1]): r[2:]
        for r in _query(
            db,
            "SELECT repository_slug, user_display_name, production_branch, production_branch_source, "
            "push_path, merge_path, review_path, delete_path, rules_unreadable_reason, assumptions "
            "FROM marts.fct_change_rights",
        )
    }
    branch, source, push, merge, review, delete, _, assumptions = paths[("payments-api", "Ben Okafor")]
    assert (branch, source) == ("main", "branching_model")
    assert push.startswith("write (via group developers (write))") and "via group developers" in push
    assert "not listed in restrict_merges rule" in merge and "which allows only Ana Ruiz" in merge
    assert review.startswith("cannot merge")
    assert delete == "can push, and no delete rule on main"
    assert "whoever may push may delete the branch when no delete rule matches (undocumented)" in assumptions
    olga = paths[("payments-api", "Olga Owner")]
    assert "not listed in push rule" in olga[2] and any("admins are bound" in a for a in olga[7])
    ledger = paths[("ledger", "Ben Okafor")]
    assert ledger[:2] == ("release", "branching_model")
    assert ledger[4].startswith("not enforced: require_approvals_to_merge 1")
    assert paths[("public-docs", "Olga Owner")][:2] == ("master", "mainbranch")
    assert paths[("runbooks", "Ben Okafor")][6] == "project OPS enforces branch restrictions no API serves"


def test_changes_are_events_with_the_time_they_were_observed(change_history) -> None:
    db, _ = change_history
    events = _query(
        db,
        "SELECT c.repository_slug, c.change, c.kind, c.old_value, c.new_value, len(c.exemptions_added), "
        "c.weakens_control, c.observed_at = r.fetched_at FROM marts.fct_branch_restriction_changes c "
        "JOIN raw.change_control_reads r ON r.sync_id = c.sync_id AND r.resource_id = c.repository_uuid "
        "AND r.list = 'branch_restrictions' ORDER BY 1, 2",
    )
    assert events == [
        ("ledger", "rule_weakened", "require_approvals_to_merge", 2, 1, 0, True, True),
        ("payments-api", "exemption_added", "push", None, None, 1, True, True),
        ("payments-api", "rule_removed", "force", None, None, 0, True, True),
    ]
    history = _query(
        db,
        "SELECT repository_slug, kind, value, is_current, valid_to IS NOT NULL FROM "
        "marts.fct_branch_restriction_history WHERE repository_slug IN ('ledger', 'payments-api') "
        "AND kind IN ('force', 'require_approvals_to_merge') AND matcher IN ('*', 'release') ORDER BY ALL",
    )
    assert history == [
        ("ledger", "require_approvals_to_merge", 1, True, False),
        ("ledger", "require_approvals_to_merge", 2, False, True),
        ("payments-api", "force", None, False, True),
    ]


def test_deploy_keys_two_step_and_coverage(change_history) -> None:
    db, _ = change_history
    keys = _query(
        db,
        "SELECT resource_key, label, added_by_non_member, last_used IS NULL, "
        "days_unused = date_diff('day', coalesce(last_used, added_on), synced_at) FROM marts.fct_deploy_keys "
        "ORDER BY 1",
    )
    # The former user who added old-backup is no member; it was never used.
    assert keys == [
        ("PAY", "pay-ci", False, False, True),
        ("ledger", "old-backup", True, True, True),
        ("payments-api", "deploy-prod", False, False, True),
    ]
    tfa = dict(
        _query(
            db,
            "SELECT display_name, has_2fa_enabled FROM marts.dim_users WHERE display_name IN "
            "('Carl Contractor', 'Ana Ruiz', 'Lena Leaver', 'Olive Outside')",
        )
    )
    # Ana: true in tiny-co, unknown in tiny-labs (administered from admin.atlassian.com); Olive is no member.
    assert tfa == {"Carl Contractor": False, "Ana Ruiz": True, "Lena Leaver": False, "Olive Outside": None}
    coverage = _query(
        db,
        "SELECT workspace_slug, repositories, coverage, production_branches_push_restricted FROM "
        "marts.fct_change_control_coverage WHERE synced_at = (SELECT max(synced_at) FROM "
        "marts.fct_change_control_coverage) ORDER BY 1",
    )
    assert coverage == [("tiny-co", 5, 1.0, 1), ("tiny-labs", 1, 1.0, 1)]


def test_change_control_risks(change_history) -> None:
    db, _ = change_history
    risks = _query(
        db,
        "SELECT risk, resource_key, count(*) FROM marts.fct_change_control_risks GROUP BY ALL ORDER BY ALL",
    )
    assert risks == [
        ("change possible without an enforced review", "ledger", 6),
        ("change possible without an enforced review", "orphan-repo", 2),
        ("change possible without an enforced review", "payments-api", 5),
        ("change possible without an enforced review", "public-docs", 2),
        ("deploy key added by a former member", "ledger", 1),
        ("deploy key unused for 180 days", "PAY", 1),
        ("deploy key unused for 180 days", "ledger", 1),
        ("deploy key unused for 180 days", "payments-api", 1),
        ("exempted from a branch restriction", "ledger", 1),
        ("exempted from a branch restriction", "payments-api", 4),
        ("forks allowed to public", "public-docs", 1),
        ("member without 2FA who can change production", "payments-api", 1),
        ("merge checks not enforced", "ledger", 1),
        ("production branch without a push restriction", "ledger", 1),
        ("production branch without a push restriction", "orphan-repo", 1),
        ("production branch without a push restriction", "public-docs", 1),
    ]  # runbooks: project OPS enforces rules no API serves, so it is unknown, never unrestricted


def test_change_rights_as_of_a_past_date(change_history) -> None:
    """marts.change_rights_as_of: at the first sync, the rules as they were then (the force rule still there,
    dev not yet exempted); now, exactly fct_change_rights."""
    db, _ = change_history
    first, second = (t for (t,) in _query(db, "SELECT finished_at FROM raw.syncs ORDER BY finished_at"))
    columns = "repository_slug, user_display_name, can_push, can_force_push, rules_fully_readable"
    assert _query(
        db, "SELECT * EXCLUDE (as_of) FROM marts.change_rights_as_of(now(), null) ORDER BY ALL"
    ) == (_query(db, "SELECT * FROM marts.fct_change_rights ORDER BY ALL"))

    def payments_api_at(moment) -> dict[tuple[str, str], tuple]:
        rows = _query(
            db,
            f"SELECT {columns} FROM marts.change_rights_as_of(?, 'tiny-co') WHERE repository_slug = "
            "'payments-api'",
            [moment],
        )
        return {(r[0], r[1]): r[2:] for r in rows}

    before, after = payments_api_at(first), payments_api_at(second)
    assert before[("payments-api", "Dev Only-Direct")] == (False, False, True)
    assert after[("payments-api", "Dev Only-Direct")] == (True, True, True)
    assert before[("payments-api", "Ana Ruiz")] == (True, False, True)  # the force rule stopped her
    assert after[("payments-api", "Ana Ruiz")] == (True, True, True)
    assert _query(
        db, "SELECT count(*) FROM marts.change_rights_as_of(?, null)", [first - timedelta(days=1)]
    ) == [(0,)]
    assert {
        w
        for (w,) in _query(
            db, "SELECT DISTINCT workspace_slug FROM marts.change_rights_as_of(?, 'tiny-labs')", [second]
        )
    } == {"tiny-labs"}


def test_register_lists_every_change_control_risk_and_what_is_unknown(change_history) -> None:
    """The register has each of the nine change-control risks, at zero too: `checked: none` where nothing was
    found, `unknown` rows (apart from the findings) where rules are not fully readable (runbooks: project OPS
    enforces rules no API serves) or 2FA is not reported (tiny-labs)."""
    db, _ = change_history
    guidance = {r for (r,) in _query(db, "SELECT risk FROM marts.change_control_risk_guidance")}
    assert len(guidance) == 9
    register = _query(
        db,
        "SELECT risk, status, workspace_slug, detail FROM marts.risk_register_as_of(now(), null) "
        "WHERE area = 'change control' ORDER BY ALL",
    )
    assert {r[0] for r in register} == guidance
    statuses: dict[str, set[str]] = {}
    for risk, status, _, _ in register:
        statuses.setdefault(risk, set()).add(status)
    assert statuses["change control not readable"] == {"checked: none"}
    assert statuses["production branch without a push restriction"] == {"open", "unknown"}
    assert statuses["change possible without an enforced review"] == {"open", "unknown"}
    unknown = [(r[0], r[2], r[3]) for r in register if r[1] == "unknown"]
    assert unknown == [
        (
            "change possible without an enforced review",
            "tiny-co",
            "unknown for 1 repositories whose rules are not fully readable (5 people with write): project "
            "OPS enforces branch restrictions no API serves",
        ),
        (
            "exempted from a branch restriction",
            "tiny-co",
            "unknown for 1 repositories whose rules are not fully readable: project rules no API serves",
        ),
        (  # Olive Outside: Bitbucket reports 2FA for members only
            "member without 2FA who can change production",
            "tiny-co",
            "unknown for 1 people who may change production and whose two-step verification Bitbucket does "
            "not report: has_2fa_enabled unknown",
        ),
        (  # tiny-labs is administered from admin.atlassian.com
            "member without 2FA who can change production",
            "tiny-labs",
            "unknown for 2 people who may change production and whose two-step verification Bitbucket does "
            "not report: has_2fa_enabled unknown",
        ),
        (
            "merge checks not enforced",
            "tiny-co",
            "unknown for 1 repositories whose rules are not fully readable: project rules no API serves",
        ),
        (  # runbooks has no push rule of its own, and its project's rules cannot be read
            "production branch without a push restriction",
            "tiny-co",
            "unknown for 1 repositories whose rules are not fully readable: project rules no API serves",
        ),
    ]
    summary = dict(
        _query(
            db,
            "SELECT risk, status || ' ' || findings || ' ' || unknown FROM marts.fct_risk_summary "
            "WHERE area = 'change control'",
        )
    )
    assert summary["change control not readable"] == "checked: none 0 0"
    assert summary["change possible without an enforced review"] == "open 15 1"
    assert summary["production branch without a push restriction"] == "open 3 1"
    # Counted apart: unknown is not zero findings.
    assert summary["member without 2FA who can change production"] == "open 1 3"


def test_change_review_population_says_what_a_revoke_removes(change_history) -> None:
    """The change-control review's rows: everyone who can change a production branch alone, with the groups
    a revoke removes them from (the group a rule exempts them through, else the groups behind their write
    access) and what only a person can change in Bitbucket (a rule naming them, write outside groups)."""
    db, _ = change_history
    rows = _query(
        db,
        "SELECT resource_key, user_display_name, removable_via_groups, paths_outside_groups "
        "FROM marts.change_review_population(now(), 'tiny-co') ORDER BY 1, 2",
    )
    alone = _query(
        db,
        "SELECT repository_slug, user_display_name FROM marts.fct_change_rights WHERE can_change_alone "
        "AND workspace_slug = 'tiny-co' ORDER BY 1, 2",
    )
    assert [r[:2] for r in rows] == alone and len(alone) == 15
    got = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    named = "push rule #2 (main) names them: remove them from it in the repository's branch restrictions"
    owner = (
        "admin through the workspace owner role, which no group removal takes away: remove it, or add a push "
        "restriction and enforce merge checks on main"
    )
    assert got[("payments-api", "Ben Okafor")] == (["developers"], [])  # exempted through developers
    assert got[("payments-api", "Dev Only-Direct")] == ([], [named])  # named in the rule
    assert got[("ledger", "Ben Okafor")] == (["on-call"], [])  # write and the merge exemption via on-call
    assert got[("ledger", "Cleo Lead")] == (["leads"], [])  # no push rule: the group behind write
    assert got[("orphan-repo", "Olga Owner")] == ([], [owner])
