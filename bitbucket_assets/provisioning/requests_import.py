"""`bitbucket-access requests import FILE`: CSV or JSON Lines, validated row by row, all or nothing."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..settings import DEFAULT_PROTECTED_GROUPS
from .approvals import ApproverPolicy, snapshot_group_members
from .tables import ACTIONS, create_provisioning_tables

REQUIRED = ("request_id", "workspace_slug", "group_slug", "user_id", "action", "requested_by")
OPTIONAL = ("approved_by", "approved_at", "expires_at", "reason", "approval_ref", "allow_protected")


class RequestImportError(ValueError):
    """Every bad row of a file, each named by line and field; nothing was imported."""

    def __init__(self, path: str, problems: list[str]):
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems))
        self.problems = problems


def read_text_file(path: Path, error: Callable[[list[str]], Exception]) -> str:
    """A text file as spreadsheets save them: UTF-8 with or without a BOM (Excel's "CSV UTF-8") or UTF-16 with
    a BOM. Anything else (latin-1, cp1252) is an error naming the first line that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error([f"cannot be read ({exc.strerror})"]) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            [
                f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8: save the file as UTF-8 "
                "(in Excel: CSV UTF-8)"
            ]
        ) from None
    if not text.strip():
        raise error(["the file is empty"])
    return text


def csv_records(
    text: str, required: tuple[str, ...], error: Callable[[list[str]], Exception]
) -> list[tuple[int, dict]]:
    """CSV rows with the line each starts on (a quoted field may span lines); missing columns are one
    error."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise error([f"line 1: missing column(s) {', '.join(missing)}"])
    records, start = [], 2
    try:
        for row in reader:
            records.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise error([f"line {reader.line_num}: not valid CSV ({exc})"]) from None
    return records


def read_requests(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)

    def error(problems: list[str]) -> RequestImportError:
        return RequestImportError(str(path), problems)

    text = read_text_file(path, error)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error([f"line {number}: not valid JSON ({exc.msg})"]) from None
            rows.append((number, item))
    else:
        rows = csv_records(text, REQUIRED, error)
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
        raise error(problems)
    return clean


def _text_field(row: dict[str, Any], name: str, problems: list[str]) -> str | None:
    value = row.get(name)
    if value is None or isinstance(value, str):
        return (value or "").strip() or None
    problems.append(f"{name}: expected text, got {type(value).__name__} {value!r}")
    return None


def _validate(row: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    problems, out = [], {}
    if None in row:
        problems.append("more values than there are columns")
    unknown = {k for k in row if k is not None} - set(REQUIRED) - set(OPTIONAL) - {"status"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in REQUIRED:
        out[name] = _text_field(row, name, problems)
        if not out[name] and not any(p.startswith(f"{name}:") for p in problems):
            problems.append(f"{name}: required")
    if out.get("action") and out["action"] not in ACTIONS:
        problems.append(f"action: {out['action']!r} is not one of add, remove")
    user_id = out.get("user_id") or ""
    if user_id and not (_UUID.fullmatch(user_id) or _ACCOUNT_ID.fullmatch(user_id)):
        problems.append(f"user_id: {user_id!r} is neither a {{uuid}} nor an Atlassian account id")
    for name in ("workspace_slug", "group_slug"):
        if out.get(name) and not _SLUG.fullmatch(out[name]):
            problems.append(f"{name}: {out[name]!r} is not a Bitbucket slug (letters, digits, - _ .)")
    for name in ("approved_at", "expires_at"):
        raw = row.get(name)
        if raw in (None, ""):
            out[name] = None
            continue
        if not isinstance(raw, str):
            problems.append(
                f"{name}: expected an ISO-8601 timestamp as text, got {type(raw).__name__} {raw!r}"
            )
            out[name] = None
            continue
        try:
            value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{name}: {raw!r} is not an ISO-8601 timestamp")
            out[name] = None
            continue
        if value.tzinfo is None:
            problems.append(f"{name}: {raw!r} has no timezone (write e.g. 2026-03-01T09:00:00+00:00)")
        out[name] = value
    for name in ("approved_by", "reason", "approval_ref"):
        out[name] = _text_field(row, name, problems)
    allow = row.get("allow_protected")
    if allow in (None, "") or isinstance(allow, bool):
        out["allow_protected"] = bool(allow)
    elif isinstance(allow, str) and allow.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
        out["allow_protected"] = allow.strip().lower() in ("1", "true", "yes")
    else:
        problems.append(f"allow_protected: {allow!r} is not true or false")
        out["allow_protected"] = False
    if out["expires_at"] and out.get("action") == "remove":
        problems.append("expires_at: only an `add` can expire")
    return problems, out


_UUID = re.compile(r"\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}")
# Atlassian account ids: "557058:<uuid>" and other prefixes, or 24 hex digits for older accounts.
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9]{1,16}:[A-Za-z0-9-]{1,64}|[0-9a-f]{24}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def import_requests(
    con,
    path: str | Path,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
) -> int:
    """Validate the whole file (approvals too, when a policy is given; `protected`: the groups changed only
    with `allow_protected`), then insert every row in one transaction; returns how many."""
    rows = read_requests(path)
    if approvals is not None:
        members = snapshot_group_members(con)
        problems = [
            f"line {number}: approved_by: {problem}"
            for row in rows
            for number in [row["_line"]]
            if row.get("approved_by") and (problem := approvals.approval_problem(row, protected, members))
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
_TYPES = ("varchar",) * len(REQUIRED) + (
    "varchar",
    "timestamptz",
    "timestamptz",
    "varchar",
    "varchar",
    "boolean",
)
