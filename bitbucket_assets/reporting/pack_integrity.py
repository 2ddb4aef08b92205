"""What lets an auditor trust an evidence pack ("information produced by the entity"): a manifest naming the
parameters, the syncs drawn on (with their completeness figures and reconciliation result), the exact SQL, row
count and SHA-256 of every CSV and of the report, and the provisioning log's head at the time; the manifest
signed with the service's key (`manifest.json.sig`, an OpenSSH signature anyone can check with the public
key); the pack's digests recorded in the warehouse; and a check that recomputes them all.

Without the signature, a pack resists only someone who cannot write to the warehouse: whoever can may rewrite
a CSV, recompute the manifest and record its new digest. With it, they would need the private key.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ..provisioning.audit_log import head_problem
from ..service_key import UNSIGNED, ServiceKey
from ..signing import SignatureError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"  # where `ssh-keygen -Y sign` puts the signature of manifest.json
REPORT = "evidence.html"

# The syncs a pack draws on: the last one at or before the start of the period (its baseline) and every one in
# it.
SYNCS_SQL = """
    select s.sync_id, s.synced_at, s.status, s.workspaces, s.users, s.groups, s.repositories, s.entity_counts,
           s.api_calls, s.anomalies, s.skipped_workspaces, r.compared_rows, r.mismatches, r.passed as
           reconciled
    from marts.fct_sync_summary s
    left join marts.fct_reconciliations r using (sync_id)
    where s.synced_at <= $to
      and s.synced_at >= coalesce((select max(synced_at) from marts.fct_sync_summary where synced_at <=
      $from), $from)
    order by s.synced_at
"""

RECORD_DDL = (
    "CREATE SCHEMA IF NOT EXISTS reporting",
    """
    -- Every evidence pack written, with the digests `evidence verify` compares a pack against.
    CREATE TABLE IF NOT EXISTS reporting.evidence_packs (
        manifest_sha256 VARCHAR PRIMARY KEY,
        report_sha256 VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        period_from TIMESTAMPTZ NOT NULL,
        period_to TIMESTAMPTZ NOT NULL,
        directory VARCHAR NOT NULL,
        files JSON NOT NULL
    )
    """,
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def csv_rows(path: Path) -> int:
    """Data rows of a CSV written by the pack (its header excluded; quoted newlines counted once)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def syncs_drawn_on(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    cursor = con.execute(SYNCS_SQL, {"from": start, "to": end})
    names = [d[0] for d in cursor.description]
    return [{k: _plain(v) for k, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def manifest_of(
    out: Path,
    parameters: dict[str, str],
    syncs: list[dict],
    queries: dict[str, str],
    log_head: dict | None,
    signing: dict | None,
) -> dict:
    """The manifest of the CSVs in `out`: parameters, syncs, per CSV its SQL, rows and SHA-256, the
    provisioning log's head, and which key signs it (None: unsigned). The report's digest is added by
    `write_manifest`, once the report is written."""
    files = {
        f"{name}.csv": {
            "sql": " ".join(sql.split()),
            "rows": csv_rows(out / f"{name}.csv"),
            "sha256": sha256_of(out / f"{name}.csv"),
        }
        for name, sql in queries.items()
    }
    return {
        "tool": "bitbucket-access",
        "parameters": parameters,
        "syncs": syncs,
        "files": files,
        "provisioning_log": log_head,
        "signing": signing,
    }


def write_manifest(out: Path, manifest: dict, key: ServiceKey) -> dict:
    """manifest.json beside the report, with the report's digest; signed into manifest.json.sig when `key`
    signs."""
    manifest = {**manifest, "report": {"file": REPORT, "sha256": sha256_of(out / REPORT)}}
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out / MANIFEST).write_text(text, "utf-8")
    if key.signs:
        (out / SIGNATURE).write_text(key.sign(text.encode(), "evidence"), "utf-8")
    return manifest


def provisioning_log_head(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The provisioning log's last row and hash (None: no log yet)."""
    try:
        seq, row_hash = con.execute(
            "select max(seq), arg_max(row_hash, seq) from provisioning.provisioning_log"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return {"seq": seq, "row_hash": row_hash} if seq is not None else None


def record_pack(
    con: duckdb.DuckDBPyConnection, out: Path, manifest: dict, created_at: datetime
) -> tuple[str, str]:
    """Store the pack's digests in the warehouse (`reporting.evidence_packs`); returns (manifest, report)
    SHA-256."""
    for statement in RECORD_DDL:
        con.execute(statement)
    digests = sha256_of(out / MANIFEST), sha256_of(out / REPORT)
    parameters = manifest["parameters"]
    con.execute(
        "insert or replace into reporting.evidence_packs values (?, ?, ?, ?, ?, ?, ?)",
        [
            *digests,
            created_at,
            parameters["from"],
            parameters["to"],
            str(out.resolve()),
            json.dumps({name: entry["sha256"] for name, entry in manifest["files"].items()}),
        ],
    )
    return digests


@dataclass
class Verification:
    directory: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the verdict rests on: signed or not

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_pack(
    directory: Path, con: duckdb.DuckDBPyConnection | None, key: ServiceKey | None = None
) -> Verification:
    """Check the manifest's signature with the public key (when one is configured), recompute every file's
    rows and SHA-256 against the manifest, the manifest's and report's digests against the warehouse's record,
    and that the provisioning log still holds the head the pack recorded; each difference names the file."""
    key = key or ServiceKey()
    result = Verification(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        result.problems.append(f"{MANIFEST}: missing, so nothing can be verified")
        return result
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        generated_at = datetime.fromisoformat(manifest["parameters"]["generated_at"])
    except (ValueError, KeyError, TypeError):
        result.problems.append(f"{MANIFEST}: not a manifest this tool wrote")
        return result
    _check_signature(directory, manifest_path.read_bytes(), generated_at, key, result)
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.exists():
            result.problems.append(f"{name}: missing")
            continue
        if sha256_of(path) != expected["sha256"]:
            result.problems.append(f"{name}: altered (SHA-256 differs from the manifest)")
        elif csv_rows(path) != expected["rows"]:
            result.problems.append(f"{name}: {csv_rows(path)} rows, the manifest says {expected['rows']}")
        else:
            result.checked.append(name)
    report = manifest.get("report") if isinstance(manifest.get("report"), dict) else None
    if report and (directory / REPORT).exists() and sha256_of(directory / REPORT) != report.get("sha256"):
        result.problems.append(f"{REPORT}: altered (SHA-256 differs from the manifest)")
    if con is None:
        result.problems.append("no warehouse to compare the pack's digests with")
        return result
    try:
        record = con.execute(
            "select report_sha256 from reporting.evidence_packs where manifest_sha256 = ?",
            [sha256_of(manifest_path)],
        ).fetchone()
    except duckdb.CatalogException:
        record = None
    if record is None:
        result.problems.append(
            f"{MANIFEST}: altered, or the pack was not written from this warehouse "
            "(its SHA-256 is not in reporting.evidence_packs)"
        )
    elif not (directory / REPORT).exists():
        result.problems.append(f"{REPORT}: missing")
    elif sha256_of(directory / REPORT) != record[0]:
        result.problems.append(f"{REPORT}: altered (SHA-256 differs from the warehouse's record)")
    else:
        result.checked += [MANIFEST, REPORT]
    _check_log_head(con, manifest.get("provisioning_log"), result)
    return result


def _check_signature(
    directory: Path, manifest: bytes, generated_at: datetime, key: ServiceKey, result: Verification
) -> None:
    signature = directory / SIGNATURE
    if not key.verifies:
        result.notes.append(f"the pack is {UNSIGNED}")
        if signature.exists():
            result.notes.append(
                f"{SIGNATURE} is there, but no public key is configured to check it: set "
                "BITBUCKET_SIGNING_PUBLIC_KEY"
            )
        return
    if not signature.exists():
        result.problems.append(
            f"{SIGNATURE}: missing: the pack is not signed, or its signature was removed, so nothing shows "
            f"that {MANIFEST} is the one this tool wrote"
        )
        return
    try:
        made = key.check(manifest, signature.read_text(encoding="utf-8"), "evidence", at=generated_at)
    except (SignatureError, UnicodeDecodeError) as exc:
        result.problems.append(f"{MANIFEST}: its signature does not verify ({exc}): altered or forged")
        return
    result.checked.append(SIGNATURE)
    result.notes.append(f"{MANIFEST} is signed by the service's key {made.fingerprint}")


def _check_log_head(con: duckdb.DuckDBPyConnection, head: object, result: Verification) -> None:
    """The provisioning log must still hold the head the pack recorded (rows may have been added since)."""
    if not isinstance(head, dict):
        return
    try:
        problem = head_problem(con, int(head["seq"]), str(head["row_hash"]), "this pack")
    except (KeyError, TypeError, ValueError):
        problem = f"{MANIFEST}: its provisioning log head is not one this tool wrote"
    except duckdb.CatalogException:
        problem = "the provisioning log this pack recorded is gone from the warehouse"
    if problem:
        result.problems.append(problem)
    else:
        result.checked.append(f"provisioning log (row {head['seq']})")
