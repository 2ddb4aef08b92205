"""User access reviews: export a dated population as a review campaign (the import is in review_import.py).

Export: one row per (user, resource, permission) held at `as_of`, with every grant path, when it was first
granted (from the history), the user's last access and groups, what else a revoke of it takes away
(`revoke_also_removes`, revoke_impact.py), and empty reviewer / decision / comment columns. Every export is
a **campaign** registered in the warehouse (`provisioning.review_campaigns`, with the time it is due, and
`provisioning.review_items` with each row's evidence and a fingerprint), so that the import can tell a row
that was exported from one that was made up or edited, and a decision that came too late.
"""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from ..provisioning.tables import create_provisioning_tables
from ..settings import DEFAULT_REVIEW_DUE_DAYS
from .revoke_impact import population_losses
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
    "revoke_also_removes",
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

# The population and what a revoke can take away are dbt's, per campaign kind: who holds what
# (marts.review_population, macros/access_rules.sql), or who can change a production branch alone
# (marts.change_review_population, over marts.change_rights_as_of).
POPULATIONS = {"access": "marts.review_population", "change-control": "marts.change_review_population"}
EXPORT_SQL = """
    select *, '' as reviewer, '' as decision, '' as comment
    from {population}(cast($as_of as timestamptz), $workspace)
"""
# Registered with each item (not in the file): the groups a revoke removes the user from, and the paths a
# person must remove in Bitbucket.
REVOCATION = ("removable_via_groups", "paths_outside_groups")


def export_rows(
    con: duckdb.DuckDBPyConnection, as_of: datetime, workspace: str | None = None, kind: str = "access"
) -> list[dict]:
    sql = EXPORT_SQL.format(population=POPULATIONS[kind])  # a key of ours, never the caller's text
    cursor = con.execute(sql, {"as_of": as_of, "workspace": workspace})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def write_review(rows: list[dict], path: Path, fmt: str, kind: str = "access") -> Path:
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
    sheet.title = "access review" if kind == "access" else "change-control review"
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
    due_at: datetime | None = None  # decisions imported after it are refused; None: created + the default
    kind: str = "access"  # a key of POPULATIONS


def new_campaign(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    workspace: str | None = None,
    due_at: datetime | None = None,
    kind: str = "access",
) -> Campaign:
    """The population at `as_of` as a new campaign of `kind` (POPULATIONS): every row carries the campaign id
    and its fingerprint."""
    campaign_id = uuid.uuid4().hex[:16]
    rows = export_rows(con, as_of, workspace, kind)
    # What else a revoke takes is read off the whole access population; a change-control campaign holds only
    # the rights to change production, so its file leaves the column empty and the import's summary and
    # `provision --dry-run` name the loss (docs/provisioning.md).
    losses = population_losses(rows) if kind == "access" else {}
    for row in rows:
        # Information for the reviewer, not evidence: the import neither needs nor compares it.
        row["revoke_also_removes"] = losses.get(row["review_item"], "")
        row["campaign_id"] = campaign_id
        row["fingerprint"] = fingerprint(campaign_id, row)
    return Campaign(campaign_id, as_of, workspace, rows, due_at, kind)


def fingerprint(campaign_id: str, row: dict) -> str:
    """SHA-256 over the campaign, the item, the permission and its grant paths (all evidence columns)."""
    values = [campaign_id, *[comparable(row.get(c)) for c in EVIDENCE]]
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()


def register_campaign(con: duckdb.DuckDBPyConnection, campaign: Campaign, created_at: datetime) -> None:
    """Record the campaign and its items in the warehouse (one transaction, one bulk insert)."""
    create_provisioning_tables(con)
    items = pd.DataFrame(  # noqa: F841 - read by the SQL below
        {
            "campaign_id": [campaign.campaign_id] * len(campaign.rows),
            **{c: [comparable(r.get(c)) for r in campaign.rows] for c in EVIDENCE},
            "fingerprint": [r["fingerprint"] for r in campaign.rows],
            **{c: [json.dumps(list(r.get(c) or [])) for r in campaign.rows] for c in REVOCATION},
        },
        dtype=object,
    )
    con.execute("BEGIN TRANSACTION")
    try:
        due = campaign.due_at or created_at + timedelta(days=DEFAULT_REVIEW_DUE_DAYS)
        con.execute(
            "insert into provisioning.review_campaigns (campaign_id, created_at, as_of, workspace_slug, "
            "item_count, due_at, campaign_kind) values (?, ?, ?, ?, ?, ?, ?)",
            [
                campaign.campaign_id,
                created_at,
                campaign.as_of,
                campaign.workspace,
                len(campaign.rows),
                due,
                campaign.kind,
            ],
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


def comparable(value) -> str:
    """A value as it survives a round trip through a CSV or XLSX file."""
    return from_spreadsheet_cell(xlsx_cell(value))
