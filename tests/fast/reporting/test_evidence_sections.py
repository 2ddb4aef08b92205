"""The evidence report as a person prints it: times in words, the population counted, every missing
reconciliation explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bitbucket_assets.reporting.evidence_sections import (
    SyncTimes,
    cell,
    population_summary,
    reconciliation_note,
    shown,
    when,
)

T0 = datetime(2026, 12, 1, 6, 0, 12, 345678, tzinfo=UTC)


def test_times_read_as_words_without_seconds_or_microseconds() -> None:
    assert when(T0) == "2026-12-01 06:00 UTC"
    assert when("2026-12-01T07:00:12.345678+01:00") == "2026-12-01 06:00 UTC"
    assert (
        cell(T0) == "2026-12-01 06:00 UTC"
        and cell(None) == ""
        and cell(True) == "yes"
        and cell(["a", "b"]) == "a, b"
    )


def test_ids_are_left_to_the_csv_and_the_rest_is_counted() -> None:
    table = shown(["changed_at", "sync_id", "principal_name"], [(T0, "s1", "Ana")] * 3, 2)
    assert table.columns == ["changed_at", "principal_name"]
    assert table.rows == [["2026-12-01 06:00 UTC", "Ana"]] * 2 and table.more == 1


def test_the_population_is_counted_by_workspace_permission_and_path_kind() -> None:
    columns = ["workspace_slug", "resource_type", "resource_key", "user_uuid", "permission", "path_kinds"]
    rows = [
        ("w", "repository", "api", "{a}", "write", "group"),
        ("w", "repository", "web", "{a}", "write", "group"),
        ("w", "repository", "api", "{b}", "write", "group"),
        ("w", "repository", "api", "{c}", "admin", "direct, group"),
        ("v", "project", "P", "{a}", "read", "project"),
    ]
    table = population_summary(columns, rows)
    assert table.columns[-3:] == ["accesses", "people", "resources"]
    assert table.rows == [
        ["v", "project", "read", "project", "1", "1", "1"],
        ["w", "repository", "write", "group", "3", "2", "2"],
        ["w", "repository", "admin", "direct, group", "1", "1", "1"],
    ]


def test_every_missing_reconciliation_says_why() -> None:
    synced = [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)]
    times = SyncTimes(synced, first_reconciled_at=synced[2])

    def note(at: datetime, **sync) -> str:
        return reconciliation_note({"synced_at": at.isoformat(), "status": "complete", **sync}, times)

    assert note(synced[0]) == (
        "not recorded: the next sync (2026-12-02 06:00 UTC) came before the marts were built, and a build "
        "reconciles only the newest sync; this warehouse's first reconciliation is from 2026-12-03 06:00 UTC"
    )
    assert note(synced[2], reconciled=True, compared_rows=40, mismatches=0) == "agreed on 40 rows"
    assert note(synced[2], reconciled=False, compared_rows=40, mismatches=2) == "2 mismatches in 40 rows"
    assert note(synced[2], reconciled=False, compared_rows=0, mismatches=0).startswith("nothing compared:")
    assert note(synced[2]) == "not recorded: the marts have not been built since this sync"
    assert note(synced[1], status="suspect") == (
        "not reconciled: the sync is suspect, and only complete syncs are"
    )
    never = SyncTimes(synced, None)
    assert reconciliation_note({"synced_at": synced[0]}, never).endswith(
        "; this warehouse holds no reconciliation yet"
    )
