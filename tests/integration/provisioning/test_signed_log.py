"""The provisioning log's head, signed with the service's key after every row: whoever can write to the
warehouse but does not hold the key cannot rewrite the log, cut its tail or empty it unnoticed, and the public
key alone says which of these happened."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import duckdb
import pytest

from bitbucket_assets.provisioning import audit_log
from bitbucket_assets.provisioning.audit_log import verify_log
from bitbucket_assets.service_key import UNSIGNED, ServiceKey, ServiceKeyError
from tests.support.keys import keypair, service_keys
from tests.support.provisioning import add_request, provision, rechain, statuses

ATTACKS = {
    "a rewritten chain": [
        "update provisioning.provisioning_log set approved_by = 'ceo@tiny.example' where seq = 2",
        "rechain",
    ],
    "a cut tail": ["delete from provisioning.provisioning_log where seq = 3"],
    "an emptied table": ["delete from provisioning.provisioning_log"],
    "a row added by hand": ["append"],
}
FOUND = {
    "a rewritten chain": [
        "row 2 is not the row that was signed (its hash differs from the signed head): the chain was "
        "rewritten from row 2 on (2 signed head(s) differ)"
    ],
    "a cut tail": [
        "the log ends at row 2, but its head was signed at row 3: rows 3-3 were deleted",
        "request r2 is applied, but the log holds no row that made it so: its row was deleted, or the status "
        "was set by hand",
    ],
    "an emptied table": [
        "the log is empty, but its head was signed at row 3: rows 1-3 were deleted",
        *[f"request r{i} is applied, but the log holds no row that made it so" for i in range(3)],
    ],
    "a row added by hand": [
        "rows 4-4 follow the last signed head (row 3): written without the signing key, or added by hand"
    ],
}


@pytest.fixture
def signed_log(make_sim, warehouse, tmp_path):
    """Three applied requests, each row's head signed; the verifier holds only the public key."""
    sim = make_sim()
    signer, verifier = service_keys(tmp_path)
    for i, who in enumerate(("finn", "zoe", "carl")):
        add_request(warehouse, f"r{i}", sim.user(who), "leads")
    provision(sim, warehouse, signing=signer)
    return warehouse, verifier


def attack(db: str, steps: list[str]) -> None:
    for step in steps:
        if step == "rechain":
            rechain(db)
            continue
        with duckdb.connect(db) as con:
            if step == "append":  # a forged "applied" row, chained like a real one, signed by nobody
                audit_log.append(con, FORGED)
            else:
                con.execute(step)


FORGED = {
    **dict.fromkeys([*audit_log.HASHED, *audit_log.HASHED_WHEN_SET]),
    "log_id": "forged",
    "request_id": "r9",
    "action": "add",
    "outcome": "applied",
    "attempted_at": datetime.now(UTC),
    "dry_run": False,
}


def test_every_row_signs_the_head_and_the_public_key_alone_verifies_it(signed_log) -> None:
    db, verifier = signed_log
    with duckdb.connect(db, read_only=True) as con:
        heads = con.execute("select seq, row_hash from provisioning.log_heads order by seq").fetchall()
        chain = con.execute("select seq, row_hash from provisioning.provisioning_log order by seq").fetchall()
        result = verify_log(con, verifier)
    assert heads == chain and len(chain) == 3
    assert result.intact, result.problems
    assert any(n.startswith("the head at row 3 is signed by the service's key SHA256:") for n in result.notes)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_is_found_and_named_with_the_public_key(signed_log, name: str) -> None:
    db, verifier = signed_log
    attack(db, ATTACKS[name])
    with duckdb.connect(db, read_only=True) as con:
        result = verify_log(con, verifier)
    assert not result.intact
    for expected in FOUND[name]:
        assert any(problem.startswith(expected) for problem in result.problems), (expected, result.problems)


def test_a_rewritten_chain_passes_without_the_key_and_says_so(signed_log) -> None:
    """What the chain alone cannot show, and the verdict admits: a chain recomputed whole verifies."""
    db, _ = signed_log
    attack(db, ATTACKS["a rewritten chain"])
    with duckdb.connect(db, read_only=True) as con:
        result = verify_log(con)
    assert result.intact
    assert result.notes[0] == f"the provisioning log is {UNSIGNED}"
    assert "it carries 3 signed head(s), but no public key is configured" in result.notes[1]


def test_a_forged_head_does_not_verify(signed_log, tmp_path) -> None:
    """Rewrite the chain and sign its new head with another key: the public key refuses it."""
    db, verifier = signed_log
    attack(db, ATTACKS["a rewritten chain"])
    mallory = ServiceKey(private_key=keypair(tmp_path, "mallory"))
    with duckdb.connect(db) as con:
        seq, row_hash, signed_at = con.execute(
            "select seq, row_hash, attempted_at from provisioning.provisioning_log order by seq desc limit 1"
        ).fetchone()
        head = audit_log.Head(seq, row_hash, signed_at)
        con.execute("delete from provisioning.log_heads")
        con.execute(
            "insert into provisioning.log_heads values (?, ?, ?, ?)",
            [seq, row_hash, signed_at, mallory.sign(head.text(), "log_head")],
        )
        result = verify_log(con, verifier)
    assert [p for p in result.problems if "forged" in p] == [
        next(p for p in result.problems if p.startswith("the signed head at row 3 does not verify ("))
    ]


def test_a_log_cut_back_in_every_table_shows_by_its_requests(signed_log) -> None:
    """Rows and their signed heads deleted together leave a shorter log that verifies, but not the requests
    whose rows they were."""
    db, verifier = signed_log
    attack(
        db,
        [
            "delete from provisioning.provisioning_log where seq = 3",
            "delete from provisioning.log_heads where seq = 3",
        ],
    )
    with duckdb.connect(db, read_only=True) as con:
        result = verify_log(con, verifier)
    assert [p.split(":")[0] for p in result.problems] == [
        "request r2 is applied, but the log holds no row that made it so"
    ]


def test_without_a_key_nothing_is_signed_and_the_verdict_says_so(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    provision(sim, warehouse)
    with duckdb.connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from provisioning.log_heads").fetchone() == (0,)
        result = verify_log(con)
    assert result.intact and result.notes == [f"the provisioning log is {UNSIGNED}"]


@pytest.mark.parametrize("problem", ["readable by others", "another public key"])
def test_a_key_that_cannot_sign_stops_the_run_before_any_call(make_sim, warehouse, tmp_path, problem) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    key = keypair(tmp_path, "signing_key")
    if problem == "readable by others":
        key.chmod(0o644)
        signing, expected = ServiceKey(key), "can be read by others (mode 644): chmod 600 it"
    else:
        other = keypair(tmp_path, "other").with_suffix(".pub")
        signing, expected = ServiceKey(key, other), "does not check what BITBUCKET_SIGNING_KEY signs"
    before = len(sim.simulator.request_log)
    with pytest.raises(ServiceKeyError, match=re.escape(expected)):
        provision(sim, warehouse, signing=signing)
    assert len(sim.simulator.request_log) == before
    assert statuses(warehouse)["r1"][0] == "pending"
