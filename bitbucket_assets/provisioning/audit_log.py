"""The provisioning log as a hash chain whose head the service signs.

Every row carries the SHA-256 of its own fields and of the row before: altering, deleting or inserting a row
afterwards breaks the chain from that row on, and `verify_log` names the first row where it breaks. A chain is
only a checksum, though: whoever can write to the warehouse can rewrite it whole, recomputing every hash, or
cut rows off its end. So, with the service's signing key (`service_key.py`), every row's insert also signs
the new head (its `seq` and hash) into `provisioning.log_heads`, in the same transaction; `verify_log`, with
only the public key, then names a rewritten chain (a row that is not the one signed), a cut tail or an emptied
table (a head signed beyond the log's end), rows added outside a run (after the last signed head) and a forged
head (a signature that does not verify). Two checks need no key: every request in a final state must have the
log row that set it, and heads recorded outside the warehouse (each run's, in Dagster's event log) must still
be in the chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..service_key import UNSIGNED, ServiceKey
from ..signing import SignatureError

# The fields a row's hash covers, in order. `seq`, `prev_hash` and `row_hash` are the chain itself.
HASHED = (
    "log_id",
    "request_id",
    "workspace_slug",
    "group_slug",
    "user_uuid",
    "action",
    "outcome",
    "http_status",
    "error",
    "requested_by",
    "approved_by",
    "approval_ref",
    "attempted_at",
    "run_id",
    "dry_run",
    "seq",
    "prev_hash",
)
# Fields added later: hashed (by name) only when set, so rows written before them keep their hashes.
HASHED_WHEN_SET = ("backend",)
GENESIS = "0" * 64


def row_hash(row: dict[str, Any]) -> str:
    values = [_canonical(row.get(name)) for name in HASHED]
    values += [[name, _canonical(row[name])] for name in HASHED_WHEN_SET if row.get(name) is not None]
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(con, row: dict[str, Any], key: ServiceKey | None = None) -> str:
    """Insert one log row at the head of the chain, and sign the new head with `key` when it signs; returns
    the row's hash. Call inside the caller's transaction, so that the row and its signed head commit
    together."""
    seq, prev = con.execute(
        "select coalesce(max(seq), 0) + 1, coalesce(arg_max(row_hash, seq), ?) from "
        "provisioning.provisioning_log where seq is not null",
        [GENESIS],
    ).fetchone()
    full = {"log_id": uuid.uuid4().hex, **row, "seq": seq, "prev_hash": prev}
    full["row_hash"] = row_hash(full)
    columns = [*HASHED, *HASHED_WHEN_SET, "row_hash"]
    con.execute(
        f"insert into provisioning.provisioning_log ({', '.join(columns)}) values "
        f"({', '.join('?' * len(columns))})",
        [full[c] for c in columns],
    )
    if key is not None and key.signs:
        head = Head(seq, full["row_hash"], full["attempted_at"])
        con.execute(
            "insert or replace into provisioning.log_heads values (?, ?, ?, ?)",
            [head.seq, head.row_hash, head.signed_at, key.sign(head.text(), "log_head")],
        )
    return full["row_hash"]


@dataclass(frozen=True)
class Head:
    """The log's head after row `seq`, as signed: the row's hash covers every row before it."""

    seq: int
    row_hash: str
    signed_at: datetime

    def text(self) -> bytes:
        """What the signature covers: the head, named, in a form no other signed text of this tool takes."""
        return (
            "bitbucket-access provisioning log head\n"
            f"seq {self.seq}\nrow_hash {self.row_hash}\nsigned_at {_canonical(self.signed_at)}\n"
        ).encode()


@dataclass(frozen=True)
class RecordedHead:
    """A head recorded outside the warehouse (a provisioning run's, in Dagster's event log): the chain must
    still hold a row with this hash."""

    row_hash: str
    where: str  # e.g. "Dagster run 3f2a... (2026-11-30 09:05 UTC)"


@dataclass
class Verification:
    rows: int
    head: str
    problems: list[str]
    notes: list[str] = field(default_factory=list)  # what the verdict rests on (signed or not, anchors)

    @property
    def intact(self) -> bool:
        return not self.problems


# A request in one of these states was set so by a provisioning run, together with its log row.
FINAL = ("applied", "no_change", "rejected", "failed", "expired")


def verify_log(con, key: ServiceKey | None = None, recorded: Iterable[RecordedHead] = ()) -> Verification:
    """Recompute the chain in `seq` order (every break named by sequence number and log id); check the signed
    heads with `key`'s public key, that every request in a final state has its log row, and that each
    `recorded` head is still in the chain."""
    names = ", ".join([*HASHED, *HASHED_WHEN_SET])
    cursor = con.execute(f"select {names}, row_hash from provisioning.provisioning_log order by seq")
    names = [d[0] for d in cursor.description]
    problems, prev, expected_seq, count = [], GENESIS, 1, 0
    by_seq: dict[int, str] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        count += 1
        where = f"row {row['seq']} (log_id {row['log_id']}, request {row['request_id']})"
        if row["seq"] is None:
            problems.append(
                f"row with log_id {row['log_id']} has no place in the chain (seq is empty): inserted"
            )
            continue
        by_seq[row["seq"]] = row["row_hash"]
        if row["seq"] != expected_seq:
            problems.append(f"{where}: expected row {expected_seq} here: rows were deleted or inserted")
        if row["prev_hash"] != prev:
            problems.append(f"{where}: does not follow the row before it (prev_hash differs)")
        if row_hash(row) != row["row_hash"]:
            problems.append(f"{where}: its fields were changed after it was written (hash differs)")
        prev, expected_seq = row["row_hash"], row["seq"] + 1
    result = Verification(count, prev, problems)
    problems += _unlogged_requests(con)
    _check_signed_heads(con, key or ServiceKey(), by_seq, result)
    for head in recorded:
        if head.row_hash not in by_seq.values():
            problems.append(
                f"{head.where} recorded the log's head {head.row_hash}, which the log no longer holds: rows "
                "were cut or rewritten since"
            )
        else:
            result.notes.append(f"the head {head.where} recorded is in the chain")
    return result


def head_problem(con, seq: int, expected_hash: str, recorded_by: str) -> str | None:
    """Why the log no longer holds row `seq` with hash `expected_hash` as `recorded_by` saw it, or None."""
    last = con.execute("select coalesce(max(seq), 0) from provisioning.provisioning_log").fetchone()[0]
    found = con.execute("select row_hash from provisioning.provisioning_log where seq = ?", [seq]).fetchone()
    if last < seq:
        return (
            f"the provisioning log ends at row {last}, but {recorded_by} recorded its head at row {seq}: "
            "rows were cut since"
        )
    if found is None or found[0] != expected_hash:
        return (
            f"row {seq} of the provisioning log is not the one {recorded_by} recorded (its hash differs): "
            "the log was rewritten since"
        )
    return None


def _unlogged_requests(con) -> list[str]:
    """Requests in a final state without the (not dry-run) log row that set it."""
    rows = con.execute(
        "select r.request_id, r.status from provisioning.access_requests r where r.status in "
        f"({', '.join('?' * len(FINAL))}) and not exists (select 1 from provisioning.provisioning_log l "
        "where l.request_id = r.request_id and l.outcome = r.status and not l.dry_run) order by 1",
        list(FINAL),
    ).fetchall()
    return [
        f"request {request_id} is {status}, but the log holds no row that made it so: its row was deleted, "
        "or the status was set by hand"
        for request_id, status in rows
    ]


def _check_signed_heads(con, key: ServiceKey, by_seq: dict[int, str], result: Verification) -> None:
    rows = con.execute(
        "select seq, row_hash, signed_at, signature from provisioning.log_heads order by seq"
    ).fetchall()
    heads = [Head(seq, digest, signed_at) for seq, digest, signed_at, _ in rows]
    signatures = {row[0]: row[3] for row in rows}
    if not key.verifies:
        result.notes.append(f"the provisioning log is {UNSIGNED}")
        if heads:
            result.notes.append(
                f"it carries {len(heads)} signed head(s), but no public key is configured to check them: set "
                "BITBUCKET_SIGNING_PUBLIC_KEY"
            )
        return
    problems = result.problems
    last = max(by_seq, default=0)
    if not heads:
        if by_seq:
            problems.append(
                f"no signed head covers the log (rows 1-{last}): it was written without "
                "BITBUCKET_SIGNING_KEY, or its signatures were removed"
            )
        return
    latest = heads[-1]
    if latest.seq > last:
        cut = "the log is empty" if not by_seq else f"the log ends at row {last}"
        problems.append(
            f"{cut}, but its head was signed at row {latest.seq}: rows {last + 1}-{latest.seq} were deleted"
        )
    rewritten = [h.seq for h in heads if h.seq in by_seq and by_seq[h.seq] != h.row_hash]
    if rewritten:
        problems.append(
            f"row {rewritten[0]} is not the row that was signed (its hash differs from the signed head): the "
            f"chain was rewritten from row {rewritten[0]} on ({len(rewritten)} signed head(s) differ)"
        )
    try:
        made = key.check(latest.text(), signatures[latest.seq], "log_head", at=latest.signed_at)
    except SignatureError as exc:
        problems.append(f"the signed head at row {latest.seq} does not verify ({exc}): it was forged")
        return
    if latest.seq < last:
        problems.append(
            f"rows {latest.seq + 1}-{last} follow the last signed head (row {latest.seq}): written without "
            "the signing key, or added by hand"
        )
    result.notes.append(f"the head at row {latest.seq} is signed by the service's key {made.fingerprint}")


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value
