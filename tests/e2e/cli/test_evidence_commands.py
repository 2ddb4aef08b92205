"""`evidence` as a user runs it: periods and output mistakes."""

from __future__ import annotations

from tests.support.warehouses import History


def _evidence_cli(db: str, *args: str):
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    # A copy: writing a pack records its digests in the warehouse, and the session's history stays as built.
    copy = Path(tempfile.mkdtemp()) / "copy.duckdb"
    shutil.copy(db, copy)
    exe = Path(sys.executable).parent / "bitbucket-access"
    return subprocess.run(
        [str(exe), "evidence", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DUCKDB_PATH": str(copy)},
    )


def test_a_bare_date_period_is_the_whole_day(tiny_history: History, tmp_path) -> None:
    """`--from D --to D` covers all of day D (a bare date was the end of the day for both ends)."""
    day = tiny_history.query("select cast(max(changed_at) as date) from marts.fct_access_changes")[0][0]
    expected = tiny_history.query(
        "select count(*) from marts.fct_access_changes where cast(changed_at as date) = ?", [day]
    )[0][0]
    done = _evidence_cli(
        tiny_history.db, "--from", str(day), "--to", str(day), "--out", str(tmp_path / "pack")
    )
    assert done.returncode == 0, done.stderr[-800:]
    assert expected > 0 and f"  changes: {expected}" in done.stdout.splitlines()


def test_period_and_output_mistakes_are_clear_errors(tiny_history: History, tmp_path) -> None:
    backwards = _evidence_cli(
        tiny_history.db, "--from", "2026-03-02", "--to", "2026-03-01", "--out", str(tmp_path)
    )
    assert backwards.returncode == 2 and "--from 2026-03-02 is after --to 2026-03-01" in backwards.stderr
    garbled = _evidence_cli(
        tiny_history.db, "--from", "yesterday", "--to", "2026-03-01", "--out", str(tmp_path)
    )
    assert garbled.returncode == 2 and "'yesterday' is not a date" in garbled.stderr
    pack = tmp_path / "pack"
    assert (
        _evidence_cli(
            tiny_history.db, "--from", "2000-01-01", "--to", "2099-01-01", "--out", str(pack)
        ).returncode
        == 0
    )
    (pack / "stale-from-last-quarter.csv").write_text("x\n")
    again = _evidence_cli(tiny_history.db, "--from", "2000-01-01", "--to", "2099-01-01", "--out", str(pack))
    assert again.returncode == 1 and "not an evidence pack (stale-from-last-quarter.csv)" in again.stderr
    (pack / "stale-from-last-quarter.csv").unlink()
    refused = _evidence_cli(tiny_history.db, "--from", "2000-01-01", "--to", "2099-01-01", "--out", str(pack))
    assert refused.returncode == 1 and "pass --replace" in refused.stderr
    replaced = _evidence_cli(
        tiny_history.db, "--from", "2000-01-01", "--to", "2099-01-01", "--out", str(pack), "--replace"
    )
    assert replaced.returncode == 0 and sorted(p.name for p in pack.iterdir()) == sorted(
        [
            "evidence.html",
            "manifest.json",
            "population.csv",
            "changes.csv",
            "provisioning.csv",
            "risks.csv",
            "attestations.csv",
            "review_campaigns.csv",
            "change_control.csv",
        ]
    )
