"""User access reviews: export a dated population for reviewers, import their decisions as requests.

Export: one row per (user, resource, permission) held at `as_of`, with every grant path, when it was
first granted (from the history), the user's last access and groups, and empty reviewer / decision /
comment columns. Import: every `revoke` becomes approved `remove` requests (approver = reviewer) for
the group memberships behind it; paths a group removal cannot take away (direct or project grants,
workspace ownership) are listed for a person to remove in Bitbucket.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ..provisioning.requests_import import insert_requests
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
]
DECISIONS = ("keep", "revoke", "")

EXPORT_SQL = """
with held as (
    select * from marts.access_as_of(cast($as_of as timestamptz))
    where principal_type = 'user' and resource_type in ('repository', 'project', 'workspace', 'group')
      and ($workspace is null or workspace_slug = $workspace)
),
paths as (
    select
        workspace_slug, resource_type, resource_id, principal_id,
        any_value(resource_key) as resource_key,
        any_value(resource_name) as resource_name,
        any_value(user_account_id) as user_account_id,
        any_value(principal_name) as user_display_name,
        arg_max(permission, case permission when 'read' then 1 when 'member' then 1 when 'write' then 2
            when 'create-project' then 2 when 'create-repo' then 3 when 'admin' then 4 when 'owner' then 4 else 0 end)
            as permission,
        string_agg(grant_source
            || case when via_group_slug is not null then ' via group ' || via_group_slug else '' end
            || case when via_project_key is not null then ' via project ' || via_project_key else '' end
            || ': ' || permission, '; ' order by grant_source, via_group_slug, via_project_key) as grant_paths,
        min(valid_from) as first_granted_at
    from held
    group by workspace_slug, resource_type, resource_id, principal_id
),
groups_of as (
    select workspace_slug, principal_id, string_agg(resource_key, ', ' order by resource_key) as groups
    from held where resource_type = 'group' group by all
),
accessed as (
    select user_uuid, workspace_slug, max(last_accessed) as last_accessed
    from staging.stg_bitbucket__workspace_members group by all
)
select
    p.workspace_slug || ':' || p.resource_type || ':' || p.resource_key || ':' || p.principal_id as review_item,
    cast($as_of as timestamptz) as as_of,
    p.workspace_slug, p.resource_type, p.resource_key, p.resource_name,
    p.principal_id as user_uuid, p.user_account_id, p.user_display_name, p.permission, p.grant_paths,
    p.first_granted_at, a.last_accessed, coalesce(g.groups, '') as groups,
    '' as reviewer, '' as decision, '' as comment
from paths p
left join groups_of g on g.workspace_slug = p.workspace_slug and g.principal_id = p.principal_id
left join accessed a on a.workspace_slug = p.workspace_slug and a.user_uuid = p.principal_id
order by p.workspace_slug, p.resource_type, p.resource_key, p.user_display_name
"""


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
                writer.writerow({k: spreadsheet_cell(row[k]) for k in COLUMNS})
        return path
    from openpyxl import Workbook
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = "access review"
    sheet.append(COLUMNS)
    for number, row in enumerate(rows, start=2):
        for column, key in enumerate(COLUMNS, start=1):
            cell = sheet.cell(row=number, column=column, value=xlsx_cell(row[key]))
            cell.data_type = "s"  # a string, whatever it starts with: never a formula
    decision_col = chr(ord("A") + COLUMNS.index("decision"))
    choice = DataValidation(type="list", formula1='"keep,revoke"', allow_blank=True)
    sheet.add_data_validation(choice)
    choice.add(f"{decision_col}2:{decision_col}{len(rows) + 1}")
    sheet.freeze_panes = "A2"
    book.save(path)
    return path


class ReviewImportError(ValueError):
    """Rows the import could not understand, each named by line and column; nothing was imported."""


@dataclass
class ReviewImport:
    requests: list[dict] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # revocations a group removal cannot carry out
    kept: int = 0


def read_review(path: Path) -> list[tuple[int, dict]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        header = [str(h) for h in rows[0]]
        return [
            (i, dict(zip(header, [from_spreadsheet_cell("" if v is None else str(v)) for v in r], strict=False)))
            for i, r in enumerate(rows[1:], 2)
        ]
    with path.open(encoding="utf-8") as handle:
        return [
            (i, {k: from_spreadsheet_cell(v or "") for k, v in row.items()})
            for i, row in enumerate(csv.DictReader(handle), 2)
        ]


def plan_review_import(path: Path, now: datetime | None = None) -> ReviewImport:
    now = now or datetime.now(UTC)
    out, problems = ReviewImport(), []
    for line, row in read_review(path):
        decision = (row.get("decision") or "").strip().lower()
        if decision not in DECISIONS:
            problems.append(f"line {line}: decision: {decision!r} is not keep or revoke")
            continue
        if decision != "revoke":
            out.kept += decision == "keep"
            continue
        reviewer = (row.get("reviewer") or "").strip()
        if not reviewer:
            problems.append(f"line {line}: reviewer: required for a revoke")
            continue
        ws, kind, key, user = row["workspace_slug"], row["resource_type"], row["resource_key"], row["user_uuid"]
        base = {
            "workspace_slug": ws,
            "user_id": user,
            "action": "remove",
            "requested_by": f"access-review:{path.name}",
            "approved_by": reviewer,
            "approved_at": now,
            "expires_at": None,
            "allow_protected": False,
        }
        reason = f"access review {path.name}, line {line}: revoke {kind} {key}" + (
            f" ({row.get('comment')})" if row.get("comment") else ""
        )
        groups = [key] if kind == "group" else []
        for part in (row.get("grant_paths") or "").split("; "):
            if " via group " in part:
                groups.append(part.split(" via group ")[1].split(" ")[0].split(":")[0])
            elif part and kind != "group":
                out.manual.append(
                    f"line {line}: {row['user_display_name']} on {kind} {ws}/{key}: {part} (remove in Bitbucket)"
                )
        for group in dict.fromkeys(groups):
            out.requests.append(
                {**base, "group_slug": group, "reason": reason, "request_id": f"review-{path.stem}-{line}-{group}"}
            )
    if problems:
        raise ReviewImportError(f"{path}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(problems))
    return out


def import_review(con: duckdb.DuckDBPyConnection, path: Path, now: datetime | None = None) -> ReviewImport:
    plan = plan_review_import(path, now)
    insert_requests(con, plan.requests, skip_existing=True)
    return plan
