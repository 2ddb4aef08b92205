"""`bitbucket-access requests import FILE`: CSV or JSON Lines, validated row by row, all or nothing; and
`requests sign FILE`, which attaches an approver's signature to each request of a file."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..settings import DEFAULT_PROTECTED_GROUPS
from .approvals import ApproverPolicy, People, snapshot_group_members, snapshot_people
from .signed_requests import approval_text, check_request_signature, sign_request, timestamp_text
from .tables import ACTIONS, create_provisioning_tables

REQUIRED = ("request_id", "workspace_slug", "group_slug", "user_id", "action", "requested_by")
OPTIONAL = (
    "approved_by",
    "approved_at",
    "expires_at",
    "reason",
    "approval_ref",
    "allow_protected",
    "approval_signature",
)


class RequestImportError(ValueError):
    """Every bad row of a file, each named by line and field; nothing was imported."""

    def __init__(self, path: str, problems: list[str]):
        super().__init__(f"{path}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems))
        self.problems = problems


def read_text_file(path: Path, error: Callable[[list[str]], Exception]) -> str:
    """A text file as spreadsheets save them (`decode_text`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error([f"cannot be read ({exc.strerror})"]) from None
    return decode_text(data, error)


def decode_text(data: bytes, error: Callable[[list[str]], Exception]) -> str:
    """Text as spreadsheets save it: UTF-8 with or without a BOM (Excel's "CSV UTF-8") or UTF-16 with a BOM.
    Anything else (latin-1, cp1252) is an error naming the first line that is not UTF-8."""
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
    """CSV rows with the line each starts on (a quoted field may span lines); a repeated or missing column is
    one error."""
    return list(iter_csv_records(text, required, error))


def iter_csv_records(
    text: str, required: tuple[str, ...], error: Callable[[list[str]], Exception]
) -> Iterator[tuple[int, dict]]:
    """`csv_records`, one row at a time (the header is checked before the first row is read)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header_problem([str(name) for name in reader.fieldnames or []], required, error)
    start = 2
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise error([f"line {reader.line_num}: not valid CSV ({exc})"]) from None


def header_problem(
    header: list[str], required: tuple[str, ...], error: Callable[[list[str]], Exception]
) -> None:
    """A header must name each column once (a reader sees the first, a parser would take the last) and hold
    every required one."""
    seen: set[str] = set()
    for name in header:
        if name and name.strip() in seen:
            raise error([f"line 1: column {name.strip()!r} appears more than once: keep one"])
        seen.add(name.strip())
    missing = [c for c in required if c not in header]
    if missing:
        raise error([f"line 1: missing column(s) {', '.join(missing)}"])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"key(s) {', '.join(repeated)} appear more than once")
    return dict(pairs)


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
                item = json.loads(line, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as exc:
                raise error([f"line {number}: not valid JSON ({exc.msg})"]) from None
            except ValueError as exc:
                raise error([f"line {number}: {exc}: keep one"]) from None
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
    for name in ("approved_by", "reason", "approval_ref", "approval_signature"):
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


def check_requests(
    rows: list[dict[str, Any]],
    path: str | Path,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
    con=None,
) -> list[dict[str, Any]]:
    """Check every approved row's approval (and signature, where one is given or the policy requires one)
    against the policy and the snapshot in `con` (None: no warehouse yet); an approver left empty is taken
    from the signature. Returns the rows; raises naming every line that fails."""
    approvals = approvals or ApproverPolicy()
    members = snapshot_group_members(con) if con is not None else (lambda ws, group: set())
    people = snapshot_people(con, approvals) if con is not None else People(approvals)
    problems = []
    for row in rows:
        if not (row.get("approved_by") or row.get("approved_at") or row.get("approval_signature")):
            continue  # waits for an approval
        number = row["_line"]
        check = check_request_signature(row, approvals, protected, people)
        if check.problem:
            problems.append(f"line {number}: approval_signature: {check.problem}")
            continue
        if check.signer is not None and not row.get("approved_by"):
            row["approved_by"] = check.signer.principal
        if not row.get("approved_by"):
            continue  # the provisioning run rejects it, naming the missing approver
        problem = approvals.approval_problem(row, protected, members, people)
        if problem:
            problems.append(f"line {number}: approved_by: {problem}")
    if problems:
        raise RequestImportError(str(path), problems)
    return rows


def import_requests(
    con,
    path: str | Path,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
) -> int:
    """Validate the whole file (approvals and signatures against `approvals`; `protected`: the groups changed
    only with `allow_protected`), then insert every row in one transaction; returns how many."""
    rows = check_requests(read_requests(path), path, approvals, protected, con)
    return store_requests(con, path, rows)


def store_requests(con, path: str | Path, rows: list[dict[str, Any]]) -> int:
    """Insert checked rows, all or none: a request id already in the warehouse refuses the file."""
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
    con.execute("BEGIN TRANSACTION")
    try:
        inserted = write_requests(con, rows, skip_existing=skip_existing)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return inserted


def write_requests(con, rows: list[dict[str, Any]], *, skip_existing: bool = False) -> int:
    """`insert_requests` inside the caller's transaction."""
    if not rows:
        return 0
    frame = pd.DataFrame(  # noqa: F841 - read by the SQL below
        {column: [row.get(column) for row in rows] for column in REQUEST_COLUMNS}, dtype=object
    )
    columns = ", ".join(REQUEST_COLUMNS)
    selected = ", ".join(f"cast({c} as {t}) as {c}" for c, t in zip(REQUEST_COLUMNS, _TYPES, strict=True))
    before = con.execute("select count(*) from provisioning.access_requests").fetchone()[0]
    con.execute(
        f"insert {'or ignore ' if skip_existing else ''}into provisioning.access_requests ({columns}) "
        f"select {selected} from frame"
    )
    return con.execute("select count(*) from provisioning.access_requests").fetchone()[0] - before


REQUEST_COLUMNS = (*REQUIRED, *OPTIONAL, "review_file_sha256")
_TYPES = ("varchar",) * len(REQUIRED) + (
    "varchar",
    "timestamptz",
    "timestamptz",
    "varchar",
    "varchar",
    "boolean",
    "varchar",
    "varchar",
)


# ---- signing a requests file ----


@dataclass
class SigningPlan:
    """What `requests sign` will sign: each chosen request as the approver will approve it, with its text."""

    path: Path
    approver: str
    approved_at: datetime
    requests: list[dict[str, Any]]  # the parsed rows to sign, approver and time filled in

    def texts(self) -> list[tuple[str, str]]:
        return [(r["request_id"], approval_text(r).decode()) for r in self.requests]


def plan_signing(
    path: str | Path, approver: str, approved_at: datetime, request_ids: tuple[str, ...] = ()
) -> SigningPlan:
    """The requests of a file to sign: those named (each must be in the file), else every one not signed yet.
    Each is approved by `approver` at `approved_at` (to the second)."""
    path = Path(path)
    rows = read_requests(path)
    known = {r["request_id"] for r in rows}
    unknown = [rid for rid in request_ids if rid not in known]
    if unknown:
        raise RequestImportError(str(path), [f"request_id: {rid!r} is not in the file" for rid in unknown])
    chosen = [
        r
        for r in rows
        if (r["request_id"] in request_ids if request_ids else not r.get("approval_signature"))
    ]
    when = approved_at.astimezone(UTC).replace(microsecond=0)
    for row in chosen:
        row.update(approved_by=approver, approved_at=when)
    return SigningPlan(path, approver, when, chosen)


def sign_file(plan: SigningPlan, private_key: str | Path, out: str | Path | None = None) -> Path:
    """Sign each planned request with `private_key` and write the file again (to `out`, or in place, by one
    rename) with `approved_by`, `approved_at` and `approval_signature` set on those rows; every other value is
    written back as it was read."""
    signatures = {r["request_id"]: sign_request(r, private_key) for r in plan.requests}
    filled = {
        "approved_by": plan.approver,
        "approved_at": timestamp_text(plan.approved_at),
    }
    target = Path(out) if out else plan.path

    def error(problems: list[str]) -> RequestImportError:
        return RequestImportError(str(plan.path), problems)

    text = read_text_file(plan.path, error)
    if plan.path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        lines = []
        for line in text.splitlines():
            if line.strip():
                item = json.loads(line)
                # read_requests strips values: match the id as it was signed, spaces or not
                request_id = str(item.get("request_id") or "").strip()
                if request_id in signatures:
                    item.update(filled, approval_signature=signatures[request_id])
                line = json.dumps(item, ensure_ascii=False)
            lines.append(line)
        output = "\n".join(lines) + "\n"
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        header += [c for c in (*filled, "approval_signature") if c not in header]
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=header)
        writer.writeheader()
        for row in reader:
            if (row.get("request_id") or "").strip() in signatures:
                row.update(filled, approval_signature=signatures[row["request_id"].strip()])
            writer.writerow(row)
        output = buffer.getvalue()
    staging = target.with_name(f".{target.name}.signing")
    staging.write_text(output, encoding="utf-8", newline="")
    os.replace(staging, target)
    return target
