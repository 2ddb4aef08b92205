"""An analyst (or the dashboard) holding the read copy open does not make a scheduled sync fail."""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb

from bitbucket_assets.warehouse.files import read_copy_path
from bitbucket_simulator import Simulator, SimulatorServer, load_organisation
from tests.support.warehouses import run_pipeline


def test_sync_succeeds_while_the_read_copy_is_open(tiny_warehouse, warehouse_dir) -> None:
    org = load_organisation("tiny")
    db = str(warehouse_dir / "w.duckdb")
    copy = read_copy_path(db)
    # One sync of tiny, as the sync job leaves it: the warehouse and its read copy.
    shutil.copy(tiny_warehouse, db)
    shutil.copy(tiny_warehouse, copy)
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email
        reader = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import duckdb,time; c=duckdb.connect({str(copy)!r}, read_only=True); "
                "print(c.execute('select count(*) from marts.fct_grants').fetchone()[0], flush=True); "
                "time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            first_count = int(reader.stdout.readline())
            org.workspaces["tiny-co"].groups["leads"].members.append(
                next(u.uuid for u in org.users.values() if u.nickname == "finn")
            )
            org.touch()
            result = run_pipeline(server.url, email, db)  # the reader still has the old copy open
            assert result.success
        finally:
            reader.kill()
            reader.wait()
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("select count(*) from raw.syncs where status = 'complete'").fetchone()[0] == 2
        assert con.execute("select count(*) from marts.fct_grants").fetchone()[0] > first_count
