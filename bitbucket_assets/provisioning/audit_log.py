"""The provisioning log as a hash chain: every row carries the SHA-256 of its own fields and of the row
before.

Altering, deleting or inserting a row afterwards breaks the chain from that row on, and `verify_log` names
the first row where it breaks. Cutting rows off the end leaves a shorter chain that still verifies: the
head hash of each run is therefore also recorded outside the warehouse (Dagster's run metadata and the
`provision` output), so a trail can be compared with a head seen earlier.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def append(con, row: dict[str, Any]) -> str:
    """Insert one log row at the head of the chain; returns its hash. Call inside the caller's transaction."""
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
    return full["row_hash"]


@dataclass
class Verification:
    rows: int
    head: str
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_log(con) -> Verification:
    """Recompute the chain in `seq` order; every break is named by sequence number and log id."""
    names = ", ".join([*HASHED, *HASHED_WHEN_SET])
    cursor = con.execute(f"select {names}, row_hash from provisioning.provisioning_log order by seq")
    names = [d[0] for d in cursor.description]
    problems, prev, expected_seq, count = [], GENESIS, 1, 0
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        count += 1
        where = f"row {row['seq']} (log_id {row['log_id']}, request {row['request_id']})"
        if row["seq"] is None:
            problems.append(
                f"row with log_id {row['log_id']} has no place in the chain (seq is empty): inserted"
            )
            continue
        if row["seq"] != expected_seq:
            problems.append(f"{where}: expected row {expected_seq} here: rows were deleted or inserted")
        if row["prev_hash"] != prev:
            problems.append(f"{where}: does not follow the row before it (prev_hash differs)")
        if row_hash(row) != row["row_hash"]:
            problems.append(f"{where}: its fields were changed after it was written (hash differs)")
        prev, expected_seq = row["row_hash"], row["seq"] + 1
    return Verification(count, prev, problems)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value
