"""User access reviews: export a dated population as a review campaign, import reviewers' decisions as
requests.

Export: one row per (user, resource, permission) held at `as_of`, with every grant path, when it was first
granted (from the history), the user's last access and groups, and empty reviewer / decision / comment
columns. Every export is a **campaign** registered in the warehouse (`provisioning.review_campaigns`, and
`provisioning.review_items` with each row's evidence and a fingerprint), so that the import can tell a row
that was exported from one that was made up or edited.

Import: only rows of a known campaign whose item and evidence columns are unchanged are accepted; anything
else is rejected, naming line and column, and nothing is imported. A reviewer may not decide on their own
access (or, by policy, needs a second reviewer). Every `revoke` becomes approved `remove` requests
(approver = reviewer, checked against the approver policy) for the group memberships behind the access;
paths a group removal cannot take away (direct or project grants, workspace ownership) are listed for a
person to remove in Bitbucket. Request ids derive from the campaign and the item, so files with the same
name never collide and importing a file twice creates nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ..provisioning.approvals import ApproverPolicy, snapshot_group_members
from ..provisioning.requests_import import csv_records, insert_requests, read_text_file
from ..provisioning.tables import create_provisioning_tables
from ..settings import DEFAULT_PROTECTED_GROUPS
from .safe_text import from_spreadsheet_cell, spreadsheet_cell, xlsx_cell

COLUMNS = [
    "review_item",
    "as_of",
    "workspace_slug",
    "resource_type",
    "resource_key",
    "resource_name",
    "user_uuid",
    "user_account_id",
    "user_display_name",
    "permission",
    "grant_paths",
    "first_granted_at",
    "last_accessed",
    "groups",
    "reviewer",
    "decision",
    "comment",
    "campaign_id",
    "fingerprint",
]
# What a reviewer must not change: the item and the evidence a decision is taken on.
EVIDENCE = [
    "review_item",
    "workspace_slug",
    "resource_type",
    "resource_key",
    "resource_name",
    "user_uuid",
    "user_account_id",
    "user_display_name",
    "permission",
    "grant_paths",
    "groups",
]
DECISIONS = ("keep", "revoke", "")
IMPORT_COLUMNS = (*EVIDENCE, "reviewer", "decision", "campaign_id")  # what an import needs in the file

# The population and what a revoke can take away are dbt's (marts.review_population, macros/access_rules.sql).
EXPORT_SQL = """
    select *, '' as reviewer, '' as decision, '' as comment
    from marts.review_population(cast($as_of as timestamptz), $workspace)
"""
# Registered with each item (not in the file): the groups a revoke removes the user from, and the paths a
# person must remove in Bitbucket.
REVOCATION = ("removable_via_groups", "paths_outside_groups")


def export_rows(con: duckdb.DuckDBPyConnection, as_of: datetime, workspace: str | None = None) -> list[dict]:
    cursor = con.execute(EXPORT_SQL, {"as_of": as_of, "workspace": workspace})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def write_review(rows: list[dict], path: Path, fmt: str) -> Path:
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: spreadsheet_cell(row.get(k)) for k in COLUMNS})
        return path
    from openpyxl import Workbook
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = "access review"
    sheet.append(COLUMNS)
    for number, row in enumerate(rows, start=2):
        for column, key in enumerate(COLUMNS, start=1):
            cell = sheet.cell(row=number, column=column, value=xlsx_cell(row.get(key)))
            cell.data_type = "s"  # a string, whatever it starts with: never a formula
    decision_col = chr(ord("A") + COLUMNS.index("decision"))
    choice = DataValidation(type="list", formula1='"keep,revoke"', allow_blank=True)
    sheet.add_data_validation(choice)
    choice.add(f"{decision_col}2:{decision_col}{len(rows) + 1}")
    sheet.freeze_panes = "A2"
    book.save(path)
    return path


@dataclass
class Campaign:
    campaign_id: str
    as_of: datetime
    workspace: str | None
    rows: list[dict]


def new_campaign(con: duckdb.DuckDBPyConnection, as_of: datetime, workspace: str | None = None) -> Campaign:
    """The population at `as_of` as a new campaign: every row carries the campaign id and its fingerprint."""
    campaign_id = uuid.uuid4().hex[:16]
    rows = export_rows(con, as_of, workspace)
    for row in rows:
        row["campaign_id"] = campaign_id
        row["fingerprint"] = fingerprint(campaign_id, row)
    return Campaign(campaign_id, as_of, workspace, rows)


def fingerprint(campaign_id: str, row: dict) -> str:
    """SHA-256 over the campaign, the item, the permission and its grant paths (all evidence columns)."""
    values = [campaign_id, *[_comparable(row.get(c)) for c in EVIDENCE]]
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()


def register_campaign(con: duckdb.DuckDBPyConnection, campaign: Campaign, created_at: datetime) -> None:
    """Record the campaign and its items in the warehouse (one transaction, one bulk insert)."""
    create_provisioning_tables(con)
    items = pd.DataFrame(  # noqa: F841 - read by the SQL below
        {
            "campaign_id": [campaign.campaign_id] * len(campaign.rows),
            **{c: [_comparable(r.get(c)) for r in campaign.rows] for c in EVIDENCE},
            "fingerprint": [r["fingerprint"] for r in campaign.rows],
            **{c: [json.dumps(list(r.get(c) or [])) for r in campaign.rows] for c in REVOCATION},
        },
        dtype=object,
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "insert into provisioning.review_campaigns values (?, ?, ?, ?, ?)",
            [campaign.campaign_id, created_at, campaign.as_of, campaign.workspace, len(campaign.rows)],
        )
        columns = ", ".join(("campaign_id", *EVIDENCE, "fingerprint", *REVOCATION))
        lists = ", ".join(f"""from_json({c}, '["VARCHAR"]')""" for c in REVOCATION)
        con.execute(
            f"insert into provisioning.review_items ({columns}) "
            f"select campaign_id, {', '.join(EVIDENCE)}, fingerprint, {lists} from items"
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _comparable(value) -> str:
    """A value as it survives a round trip through a CSV or XLSX file."""
    return from_spreadsheet_cell(xlsx_cell(value))


class ReviewImportError(ValueError):
    """Rows the import could not accept, each named by line and column; nothing was imported."""


@dataclass
class ReviewImport:
    requests: list[dict] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # revocations a group removal cannot carry out
    kept: int = 0
    created: int = 0  # requests new to the warehouse (the others were imported before)


def read_review(path: Path) -> list[tuple[int, dict]]:
    """The rows of a review file (CSV or XLSX), each with its line; a file that cannot be read as a review
    (encoding, corrupt or empty workbook, missing columns) is one clear error."""

    def error(problems: list[str]) -> ReviewImportError:
        return ReviewImportError(f"{path}: {'; '.join(problems)}; nothing imported")

    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(path, read_only=True).active
            rows = list(sheet.iter_rows(values_only=True)) if sheet is not None else []
        except Exception as exc:  # openpyxl raises zip, XML and key errors for a damaged file
            raise error([f"not a readable .xlsx workbook ({type(exc).__name__})"]) from None
        if not rows:
            raise error(["the workbook is empty"])
        header = ["" if h is None else str(h) for h in rows[0]]
        missing = [c for c in IMPORT_COLUMNS if c not in header]
        if missing:
            raise error([f"line 1: missing column(s) {', '.join(missing)}"])
        return [
            (
                i,
                dict(
                    zip(header, [from_spreadsheet_cell("" if v is None else str(v)) for v in r], strict=False)
                ),
            )
            for i, r in enumerate(rows[1:], 2)
        ]
    records = csv_records(read_text_file(path, error), IMPORT_COLUMNS, error)
    return [
        (i, {k: from_spreadsheet_cell(v or "") for k, v in row.items() if k is not None})
        for i, row in records
    ]


def plan_review_import(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    now: datetime | None = None,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
) -> ReviewImport:
    now = now or datetime.now(UTC)
    approvals = approvals or ApproverPolicy()
    members = snapshot_group_members(con)
    out, problems = ReviewImport(), []
    rows = read_review(path)
    items = _campaign_items(con, {row.get("campaign_id") or "" for _, row in rows})
    for line, row in rows:
        decision = (row.get("decision") or "").strip().lower()
        if decision not in DECISIONS:
            problems.append(f"line {line}: decision: {decision!r} is not keep or revoke")
            continue
        if not decision:
            continue
        tampered = _tampering(row, items)
        if tampered:
            problems.append(f"line {line}: {tampered}")
            continue
        if decision == "keep":
            out.kept += 1
            continue
        reviewer = (row.get("reviewer") or "").strip()
        if not reviewer:
            problems.append(f"line {line}: reviewer: required for a revoke")
            continue
        own = _own_access_problem(approvals, row, reviewer)
        if own:
            problems.append(f"line {line}: {own}")
            continue
        campaign_id = row["campaign_id"]
        ws, kind, key, user = (
            row["workspace_slug"],
            row["resource_type"],
            row["resource_key"],
            row["user_uuid"],
        )
        base = {
            "workspace_slug": ws,
            "user_id": user,
            "action": "remove",
            "requested_by": f"access-review:{campaign_id}",
            "approved_by": reviewer,
            "approved_at": now,
            "expires_at": None,
            "allow_protected": False,
            "approval_ref": f"access review campaign {campaign_id}",
        }
        reason = f"access review {campaign_id} ({path.name}, line {line}): revoke {kind} {key}" + (
            f" ({row.get('comment')})" if row.get("comment") else ""
        )
        exported = items[campaign_id][row["review_item"]]
        groups, outside = exported["removable_via_groups"], exported["paths_outside_groups"]
        if groups is None or outside is None:
            problems.append(
                f"line {line}: campaign_id: campaign {campaign_id} was exported by an older version that "
                "did not record what a revoke removes; export a new campaign"
            )
            continue
        for part in outside:
            out.manual.append(
                f"line {line}: {row['user_display_name']} on {kind} {ws}/{key}: {part} (remove in Bitbucket)"
            )
        item = hashlib.sha256(row["review_item"].encode()).hexdigest()[:12]
        for group in groups:
            request = {
                **base,
                "group_slug": group,
                "reason": reason,
                "request_id": f"review-{campaign_id}-{item}-{group}",
            }
            problem = approvals.approval_problem(request, protected, members)
            if problem:
                problems.append(f"line {line}: reviewer: {problem}")
                break
            out.requests.append(request)
    if problems:
        raise ReviewImportError(
            f"{path}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems)
        )
    return out


def _campaign_items(con, campaign_ids: set[str]) -> dict[str, dict[str, dict]]:
    """campaign id -> review item -> the evidence registered at export."""
    create_provisioning_tables(con)
    wanted = sorted(c for c in campaign_ids if c)
    if not wanted:
        return {}
    cursor = con.execute(
        f"select campaign_id, {', '.join((*EVIDENCE, *REVOCATION))} from provisioning.review_items "
        f"where campaign_id in ({', '.join('?' * len(wanted))})",
        wanted,
    )
    out: dict[str, dict[str, dict]] = {}
    for values in cursor.fetchall():
        record = dict(zip((*EVIDENCE, *REVOCATION), values[1:], strict=True))
        out.setdefault(values[0], {})[record["review_item"]] = record
    return out


def _tampering(row: dict, items: dict[str, dict[str, dict]]) -> str | None:
    """Why this row is not a row of its campaign as exported, or None."""
    campaign_id = (row.get("campaign_id") or "").strip()
    if not campaign_id:
        return "campaign_id: empty: only rows of an exported review campaign can be imported"
    if campaign_id not in items:
        return f"campaign_id: {campaign_id!r} is not a review campaign of this warehouse"
    exported = items[campaign_id].get(row.get("review_item") or "")
    if exported is None:
        return f"review_item: not in campaign {campaign_id} (a row that was never exported)"
    for column in EVIDENCE:
        if _comparable(row.get(column)) != (exported[column] or ""):
            return f"{column}: changed since campaign {campaign_id} was exported"
    return None


def _own_access_problem(approvals: ApproverPolicy, row: dict, reviewer: str) -> str | None:
    if approvals.configured and not approvals.is_bitbucket_identity(reviewer):
        return (
            f"reviewer: {reviewer!r} is neither an account id nor an email mapped to one in the identities "
            f"of {approvals.source}: a reviewer must be someone the tool can compare with Bitbucket users"
        )
    if not approvals.is_person(reviewer, row.get("user_uuid"), row.get("user_account_id")):
        return None
    if approvals.self_review != "second_reviewer":
        return f"reviewer: {reviewer!r} may not decide on their own access"
    second = (row.get("second_reviewer") or "").strip()
    if (
        not second
        or approvals.same_person(second, reviewer)
        or approvals.is_person(second, row.get("user_uuid"), row.get("user_account_id"))
    ):
        return f"second_reviewer: a decision by {reviewer!r} on their own access needs a second reviewer"
    return None


def import_review(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    now: datetime | None = None,
    approvals: ApproverPolicy | None = None,
    protected: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS,
) -> ReviewImport:
    plan = plan_review_import(con, path, now, approvals, protected)
    plan.created = insert_requests(con, plan.requests, skip_existing=True)
    return plan
