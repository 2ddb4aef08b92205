"""`review export`: files written, the writer lock waited for, a missing output directory named."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime

from tests.support import CLI


def test_cli_export_csv_and_xlsx(warehouse, tmp_path) -> None:
    env = {**os.environ, "DUCKDB_PATH": warehouse}
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"r.{fmt}"
        done = subprocess.run(
            [
                CLI,
                "review",
                "export",
                "--as-of",
                datetime.now(UTC).date().isoformat(),
                "--workspace",
                "tiny-co",
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-1500:]
        assert out.exists() and "review rows" in done.stdout


def test_registering_a_campaign_waits_for_the_writer_lock(warehouse, tmp_path) -> None:
    """A sync holding the warehouse makes the export wait, not fail (as provisioning waits)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({warehouse!r}); print('locked', flush=True); "
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "review.csv"
    try:
        assert holder.stdout.readline().strip() == "locked"
        export_run = subprocess.Popen(
            [CLI, "review", "export", "--as-of", "2099-01-01", "--format", "csv", "--out", str(out)],
            env={**os.environ, "DUCKDB_PATH": warehouse},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Without the wait it fails at once on the lock; with it, it is still waiting while the lock is held.
        with contextlib.suppress(subprocess.TimeoutExpired):
            export_run.wait(timeout=3)
        assert export_run.poll() is None, export_run.stderr.read()[-800:]
    finally:
        holder.kill()
        holder.wait()
    try:
        assert export_run.wait(timeout=300) == 0 and out.exists()
    finally:  # not left reading a warehouse path the worker's next test reuses (`warehouse_dir`)
        if export_run.poll() is None:
            export_run.kill()
            export_run.wait()


def test_an_output_directory_that_does_not_exist_is_named(warehouse, tmp_path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "review.csv"
    env = {**os.environ, "DUCKDB_PATH": warehouse}
    command = [CLI, "review", "export", "--as-of", "2099-01-01", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "the directory of" in done.stderr and "does not exist" in done.stderr
