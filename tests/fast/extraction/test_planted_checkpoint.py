"""The warehouse is no authority on where the credential may go: an interrupted sync whose checkpoint was
rewritten to another origin is refused before a single call, removed, and the next sync starts afresh."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.client import ForeignOriginError
from tests.support.extraction import interrupt_a_sync, plant_checkpoint, snapshot, sync
from tests.support.listener import Listener

LINKS = {
    "another port": "{elsewhere}/2.0/repositories/tiny-labs?page=2",
    "localhost for 127.0.0.1": "http://localhost:{api_port}/2.0/repositories/tiny-labs?page=2",
    "https for http": "https://127.0.0.1:{api_port}/2.0/repositories/tiny-labs?page=2",
}


@pytest.mark.parametrize(
    ("stage", "variant"), [("repositories", v) for v in LINKS] + [("effective", "another port")]
)
def test_a_planted_checkpoint_elsewhere_is_refused_before_any_call(
    make_sim, tmp_path, stage, variant
) -> None:
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    good = sync(sim, db)
    api_port = sim.url.rsplit(":", 1)[1]
    with Listener() as elsewhere:
        link = LINKS[variant].format(elsewhere=elsewhere.url, api_port=api_port)
        planted = interrupt_a_sync(sim, db)
        plant_checkpoint(db, planted, link, stage=stage)
        before = len(sim.simulator.request_log)
        with pytest.raises(ForeignOriginError) as refused:
            sync(sim, db)
        assert elsewhere.received == []
    assert len(sim.simulator.request_log) == before  # not one call, to anyone
    message = str(refused.value)
    assert f"the checkpoint of sync {planted} (workspace tiny-labs, stage {stage}) points to " in message
    assert f"not to the configured origin http://127.0.0.1:{api_port}" in message
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT sync_id, status, error FROM raw.syncs ORDER BY started_at").fetchall()
        left = con.execute("SELECT count(*) FROM raw.sync_checkpoints").fetchone()[0]
    assert [(r[0], r[1]) for r in rows] == [(good.sync_id, "complete"), (planted, "failed")]
    assert "ForeignOriginError" in rows[1][2] and left == 0
    # Nothing is stuck: the next sync starts afresh and sees what the first one saw.
    fresh = sync(sim, db)
    assert not fresh.resumed and snapshot(db, fresh.sync_id) == snapshot(db, good.sync_id)
