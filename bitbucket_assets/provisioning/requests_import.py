"""`bitbucket-access requests import FILE`: CSV or JSON Lines, validated row by row, all or nothing."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .approvals import ApproverPolicy, snapshot_group_members
from .tables import ACTIONS, PROTECTED_GROUPS, create_provisioning_tables

REQUIRED = ("request_id", "workspace_slug", "group_slug", "user_id", "action", "requested_by")
OPTIONAL = ("approved_by", "approved_at", "expires_at", "reason", "approval_ref", "allow_protected")


class RequestImportError(ValueError):
    """Every bad row of a file, each named by line and field; nothing was imported."""

    def __init__(self, path: str, problems: list[str]):
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems))
        self.problems = problems


def read_requests(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RequestImportError(str(path), [f"line {number}: not valid JSON ({exc.msg})"]) from None
            rows.append((number, item))
    else:
        reader = csv.DictReader(text.splitlines())
        rows = [(number, dict(row)) for number, row in enumerate(reader, start=2)]  # line 1 is the header
    problems, clean, seen = [], [], {}
    for number, row in rows:
        if not isinstance(row, dict):
            problems.append(f"line {number}: expected an object")
            continue
        row_problems, parsed = _validate(row)
        problems += [f"line {number}: {p}" for p in row_problems]
        rid = parsed.get("request_id")
        if rid and rid in seen:
            problems.append(f"line {number}: request_id: {rid!r} repeats line {seen[rid]}")
        elif rid:
            seen[rid] = number
        clean.append({**parsed, "_line": number})
    if problems:
        raise RequestImportError(str(path), problems)
    return clean


def _validate(row: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    problems, out = [], {}
    unknown = set(row) - set(REQUIRED) - set(OPTIONAL) - {"status"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in REQUIRED:
        value = (row.get(name) or "").strip() if isinstance(row.get(name), str | type(None)) else row.get(name)
        if not value:
            problems.append(f"{name}: required")
        out[name] = value
    if out.get("action") and out["action"] not in ACTIONS:
        problems.append(f"action: {out['action']!r} is not one of add, remove")
    user_id = out.get("user_id") or ""
    if user_id and user_id.startswith("{") != user_id.endswith("}"):
        problems.append(f"user_id: {user_id!r} is neither a {{uuid}} nor an account id")
    for name in ("approved_at", "expires_at"):
        raw = row.get(name)
        if raw in (None, ""):
            out[name] = None
            continue
        try:
            value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{name}: {raw!r} is not an ISO-8601 timestamp")
            continue
        if value.tzinfo is None:
            problems.append(f"{name}: {raw!r} has no timezone (write e.g. 2026-03-01T09:00:00+00:00)")
        out[name] = value
    out["approved_by"] = (row.get("approved_by") or "").strip() or None
    out["reason"] = row.get("reason") or None
    out["approval_ref"] = (str(row.get("approval_ref") or "").strip()) or None
    allow = row.get("allow_protected")
    out["allow_protected"] = str(allow).lower() in ("1", "true", "yes") if allow not in (None, "") else False
    if out["expires_at"] and out.get("action") == "remove":
        problems.append("expires_at: only an `add` can expire")
    return problems, out


def import_requests(con, path: str | Path, approvals: ApproverPolicy | None = None) -> int:
    """Validate the whole file (approvals too, when a policy is given), then insert every row in one
    transaction; returns how many."""
    rows = read_requests(path)
    if approvals is not None:
        members = snapshot_group_members(con)
        problems = [
            f"line {number}: approved_by: {problem}"
            for row in rows
            for number in [row["_line"]]
            if row.get("approved_by") and (problem := approvals.approval_problem(row, PROTECTED_GROUPS, members))
        ]
        if problems:
            raise RequestImportError(str(path), problems)
    create_provisioning_tables(con)
    existing = {r[0] for r in con.execute("select request_id from provisioning.access_requests").fetchall()}
    clashes = [r["request_id"] for r in rows if r["request_id"] in existing]
    if clashes:
        raise RequestImportError(str(path), [f"request_id: {rid!r} already exists" for rid in clashes])
    return insert_requests(con, rows)


def insert_requests(con, rows: list[dict[str, Any]], *, skip_existing: bool = False) -> int:
    """Insert requests into `provisioning.access_requests` in one transaction, as one bulk insert.

    Every writer of requests goes through here (`requests import`, `review import`, the demo). With
    `skip_existing`, a request id already present is left as it is; otherwise it is an error and nothing is
    inserted. Returns how many rows were inserted."""
    create_provisioning_tables(con)
    frame = pd.DataFrame(  # noqa: F841 - read by the SQL below
        {column: [row.get(column) for row in rows] for column in REQUEST_COLUMNS}, dtype=object
    )
    columns = ", ".join(REQUEST_COLUMNS)
    selected = ", ".join(f"cast({c} as {t}) as {c}" for c, t in zip(REQUEST_COLUMNS, _TYPES, strict=True))
    con.execute("BEGIN TRANSACTION")
    try:
        before = con.execute("select count(*) from provisioning.access_requests").fetchone()[0]
        con.execute(
            f"insert {'or ignore ' if skip_existing else ''}into provisioning.access_requests ({columns}) "
            f"select {selected} from frame"
        )
        after = con.execute("select count(*) from provisioning.access_requests").fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return after - before


REQUEST_COLUMNS = (*REQUIRED, *OPTIONAL)
_TYPES = ("varchar",) * len(REQUIRED) + ("varchar", "timestamptz", "timestamptz", "varchar", "varchar", "boolean")
