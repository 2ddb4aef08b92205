"""An evidence pack whose manifest the service signed: whoever can write to the warehouse but does not hold
the key cannot alter a file, recompute the manifest and record its digest unnoticed; the public key alone (in
`evidence verify`, or `ssh-keygen -Y verify` by an auditor) says what was done. The pack also records the
provisioning log's head, which the log must still hold."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets import services
from bitbucket_assets.provisioning import audit_log
from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_assets.reporting.pack_integrity import csv_rows, sha256_of
from bitbucket_assets.service_key import UNSIGNED, ServiceKey
from bitbucket_assets.settings import load_settings
from bitbucket_assets.signing import NAMESPACES
from tests.support.keys import keypair, service_keys
from tests.support.provisioning import rechain
from tests.support.warehouses import History


def log_row(i: int) -> dict:
    return {
        **dict.fromkeys([*audit_log.HASHED, *audit_log.HASHED_WHEN_SET]),
        "log_id": f"l{i}",
        "request_id": f"r{i}",
        "action": "add",
        "outcome": "applied",
        "attempted_at": datetime.now(UTC),
        "dry_run": False,
    }


def make_pack(tiny_history: History, tmp_path: Path, sign: bool):
    """A copy of the history with a two-row provisioning log, and a pack over it; returns the warehouse, the
    pack, the settings of a verifier holding the public key only, and the key pair."""
    db = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, db)
    signer, verifier = service_keys(tmp_path)
    with duckdb.connect(db) as con:
        create_provisioning_tables(con)
        for i in (1, 2):
            audit_log.append(con, log_row(i), signer)
    writer = load_settings(duckdb_path=db, bitbucket_signing_key=str(signer.private_key) if sign else None)
    end = datetime.now(UTC)
    pack = services.evidence(writer, end - timedelta(days=1), end, str(tmp_path / "pack"))
    auditor = load_settings(duckdb_path=db, bitbucket_signing_public_key=str(verifier.public_keys))
    return db, pack, auditor, signer


@pytest.fixture
def signed(tiny_history, tmp_path):
    return make_pack(tiny_history, tmp_path, sign=True)


def forge_population(db: str, directory: Path) -> None:
    """The attack: rows dropped from population.csv, the manifest recomputed to match, and its new digest
    recorded in the warehouse as a pack this tool wrote."""
    population = directory / "population.csv"
    population.write_text("".join(population.read_text().splitlines(keepends=True)[:-5]))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["population.csv"] |= {"sha256": sha256_of(population), "rows": csv_rows(population)}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    with duckdb.connect(db) as con:
        con.execute(
            "insert into reporting.evidence_packs select ?, report_sha256, created_at, period_from, "
            "period_to, directory, files from reporting.evidence_packs limit 1",
            [sha256_of(directory / "manifest.json")],
        )


def verify(settings, pack):
    return services.verify_evidence(settings, str(pack.directory))


def test_a_signed_pack_verifies_with_the_public_key_alone(signed) -> None:
    _, pack, auditor, signer = signed
    manifest = json.loads((pack.directory / "manifest.json").read_text())
    assert (
        manifest["signing"]["key"].startswith("SHA256:")
        and manifest["signing"]["principal"] == "bitbucket-access"
    )
    assert manifest["provisioning_log"]["seq"] == 2 and manifest["report"]["sha256"] == sha256_of(pack.report)
    assert f"is signed with the service's key {manifest['signing']['key']}" in pack.report.read_text()
    result = verify(auditor, pack)
    assert result.intact, result.problems
    assert "manifest.json.sig" in result.checked and "provisioning log (row 2)" in result.checked
    # An auditor needs neither this tool nor the warehouse to check the manifest: OpenSSH does it.
    signers = pack.directory.parent / "allowed_signers"
    signers.write_text(f"bitbucket-access {signer.private_key.with_suffix('.pub').read_text()}")
    command = ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "bitbucket-access"]
    checked = subprocess.run(
        [*command, "-n", NAMESPACES["evidence"], "-s", str(pack.directory / "manifest.json.sig")],
        input=(pack.directory / "manifest.json").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_rows_dropped_with_a_recomputed_manifest_and_a_forged_digest_are_found(signed) -> None:
    db, pack, auditor, _ = signed
    forge_population(db, pack.directory)
    result = verify(auditor, pack)
    assert [p for p in result.problems if p.startswith("manifest.json: its signature does not verify")]
    assert "population.csv" in result.checked  # consistent with the forged manifest: only the signature tells


def test_a_removed_or_replaced_signature_is_found(signed, tmp_path) -> None:
    db, pack, auditor, _ = signed
    forge_population(db, pack.directory)
    mallory = ServiceKey(keypair(tmp_path, "mallory"))
    manifest = (pack.directory / "manifest.json").read_bytes()
    (pack.directory / "manifest.json.sig").write_text(mallory.sign(manifest, "evidence"))
    assert any("its signature does not verify" in p for p in verify(auditor, pack).problems)
    (pack.directory / "manifest.json.sig").unlink()
    assert any(
        p.startswith("manifest.json.sig: missing: the pack is not signed")
        for p in verify(auditor, pack).problems
    )


def test_an_altered_report_is_found_even_with_its_digest_rewritten_in_the_warehouse(signed) -> None:
    db, pack, auditor, _ = signed
    pack.report.write_text(pack.report.read_text().replace("Summary", "Summary (all clear)"))
    with duckdb.connect(db) as con:
        con.execute("update reporting.evidence_packs set report_sha256 = ?", [sha256_of(pack.report)])
    assert "evidence.html: altered (SHA-256 differs from the manifest)" in verify(auditor, pack).problems


@pytest.mark.parametrize(
    ("attack", "found"),
    [
        (
            ["delete from provisioning.provisioning_log where seq = 2"],
            "the provisioning log ends at row 1, but this pack recorded its head at row 2: rows were cut",
        ),
        (
            ["delete from provisioning.provisioning_log", "delete from provisioning.log_heads"],
            "the provisioning log ends at row 0, but this pack recorded its head at row 2",
        ),
        (
            ["update provisioning.provisioning_log set approved_by = 'ceo' where seq = 1", "rechain"],
            "row 2 of the provisioning log is not the one this pack recorded (its hash differs): the log was "
            "rewritten since",
        ),
    ],
)
def test_the_provisioning_log_must_still_hold_the_head_the_pack_recorded(signed, attack, found) -> None:
    db, pack, auditor, _ = signed
    for step in attack:
        if step == "rechain":
            rechain(db)
        else:
            with duckdb.connect(db) as con:
                con.execute(step)
    assert any(p.startswith(found) for p in verify(auditor, pack).problems)


def test_an_unsigned_pack_says_what_it_resists(tiny_history, tmp_path) -> None:
    db, pack, auditor, _ = make_pack(tiny_history, tmp_path, sign=False)
    assert not (pack.directory / "manifest.json.sig").exists()
    assert f"This pack is {UNSIGNED}." in pack.report.read_text()
    unsigned = load_settings(duckdb_path=db)
    assert verify(unsigned, pack).intact and verify(unsigned, pack).notes == [f"the pack is {UNSIGNED}"]
    # The attack then passes, as the note says it would; a verifier holding the public key refuses the pack.
    forge_population(db, pack.directory)
    assert verify(unsigned, pack).intact
    assert any(p.startswith("manifest.json.sig: missing") for p in verify(auditor, pack).problems)
