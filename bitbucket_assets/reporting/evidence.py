"""The audit evidence pack: a self-contained HTML report plus the CSVs behind every number in it.

For a period [from, to]: the population at `to` (who could reach what, and why), every change in the
period, every provisioning action with requester, approver and time, and the open risks at `to`.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import duckdb
import pandas as pd
import vl_convert
from jinja2 import Environment, PackageLoader

from ..service_key import PRINCIPAL, UNSIGNED, ServiceKey
from ..signing import NAMESPACES
from ..warehouse.provisioning_copy import data_times
from .evidence_sections import (
    CHANGE_CONTROL_DETAIL,
    SyncTimes,
    population_summary,
    reconciliation_note,
    shown,
    when,
)
from .pack_integrity import (
    MANIFEST,
    REPORT,
    SIGNATURE,
    manifest_of,
    provisioning_log_head,
    syncs_drawn_on,
    write_manifest,
)
from .safe_text import spreadsheet_cell, text

# The columns every CSV of the pack ends with: the time of its data (ISO 8601, UTC; empty: none).
STAMP_COLUMNS = ("snapshot_at", "provisioning_log_at")


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else ""


# Every query selects from the marts and documented views: the access rules live in dbt
# (macros/access_rules.sql).
QUERIES = {
    "population": """
        select workspace_slug, resource_type, resource_key, resource_name, user_display_name, user_account_id,
               user_uuid, permission, array_to_string(grant_paths, '; ') as grant_paths,
               -- how the access is held: direct, group, project, workspace (several: joined by ', ')
               array_to_string(list_sort(list_distinct(
                   list_transform(grant_paths, lambda p: regexp_extract(p, '^[a-z]+')))), ', ') as path_kinds
        from marts.effective_access_as_of($to)
        order by workspace_slug, resource_type, resource_key, user_display_name
    """,
    "changes": """
        select changed_at, sync_id, change, workspace_slug, resource_type, resource_key, principal_type,
               principal_name, grant_source, via_group_slug, via_project_key, old_permission, new_permission
        from marts.fct_access_changes
        where changed_at >= $from and changed_at <= $to
        order by changed_at, workspace_slug, resource_key, principal_name
    """,
    # The person's and the group's names last (the CSV's earlier columns keep their places); a person the
    # snapshot does not know keeps their id as the name.
    "provisioning": """
        select a.attempted_at, a.request_id, a.workspace_slug, a.group_slug, a.user_uuid, a.action, a.outcome,
               a.http_status, a.error, a.requested_by, a.approved_by, a.approval_ref, a.approved_at,
               a.expires_at, a.run_id,
               coalesce(u.user_display_name, a.user_uuid) as user_display_name,
               coalesce(g.group_name, a.group_slug) as group_name
        from provisioning.actions as a
        left join marts.dim_users as u on u.user_uuid = a.user_uuid
        left join marts.dim_groups as g on g.workspace_slug = a.workspace_slug and g.group_slug = a.group_slug
        where not a.dry_run and a.attempted_at >= $from and a.attempted_at <= $to
        order by a.attempted_at
    """,
    # Every finding with its severity and guidance (dbt_project/seeds/risk_guidance.csv and
    # change_control_risk_guidance.csv), a row `checked: none` for each risk that found nothing ("checked,
    # none" is not "not checked"), and `unknown` rows where a change-control risk could not be checked.
    "risks": """
        select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail,
               severity, why_it_matters, what_to_do, is_finding, status, area
        from marts.risk_register_as_of($to, null)
        order by severity_order, risk, workspace_slug, resource_key, user_display_name
    """,
    # Access reviews: every attestation (keep and revoke) made in the period, with who signed it and the
    # signed file's SHA-256, and each campaign open in the period with its completion, by reviewer.
    "attestations": """
        select decided_at, campaign_id, review_item, workspace_slug, resource_type, resource_key,
               user_display_name, user_uuid, permission, decision, comment, reviewer, key_fingerprint,
               file_sha256
        from provisioning.attestations
        where decided_at >= $from and decided_at <= $to
        order by decided_at, campaign_id, review_item
    """,
    "review_campaigns": """
        select campaign_id, workspace_slug, as_of, created_at, due_at, reviewer, items_exported,
               items_decided, kept, revoked
        from provisioning.review_completion
        where created_at <= $to and coalesce(due_at, created_at) >= $from
        order by created_at, campaign_id, reviewer nulls first
    """,
    # Who can change production code (docs/design.md, "Change control"), at the latest sync: the rules are
    # read on a rolling schedule, so each row says when its repository's rules were read.
    "change_control": """
        select workspace_slug, repository_slug, production_branch, production_branch_source,
               user_display_name, user_uuid, permission, can_push, can_merge, can_merge_without_review,
               can_force_push, can_delete, can_change_alone, has_2fa_enabled, rules_fully_readable,
               rules_unreadable_reason, push_path, merge_path, review_path, rules_read_at, synced_at
        from marts.fct_change_rights
        order by workspace_slug, repository_slug, user_display_name
    """,
}


@dataclass
class EvidencePack:
    directory: Path
    report: Path
    metrics: dict[str, int | str]
    # manifest.json: parameters, syncs, SQL, rows, SHA-256 per CSV
    manifest: dict = field(default_factory=dict)


class EvidenceOutputError(ValueError):
    """The output directory holds files that are not an evidence pack this tool may replace."""


PACK_FILES = (REPORT, MANIFEST, SIGNATURE, *(f"{name}.csv" for name in QUERIES))


def _prepare(out: Path, replace: bool) -> None:
    """An empty or new directory; with `replace`, a directory holding only an earlier pack, emptied of it, so
    that no file of the earlier pack is left next to the new report."""
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return
    foreign = [name for name in present if name not in PACK_FILES]
    if not replace or foreign:
        what = (
            f"files that are not an evidence pack ({', '.join(foreign[:5])})"
            if foreign
            else "an evidence pack"
        )
        hint = "choose an empty or new directory" + ("" if foreign else ", or pass --replace")
        raise EvidenceOutputError(f"{out} already holds {what}: {hint}")
    for name in present:
        (out / name).unlink()


def build_evidence_pack(
    con: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    out: Path,
    replace: bool = False,
    key: ServiceKey | None = None,
) -> EvidencePack:
    """Write the pack into `out` (new or empty; `replace` swaps an earlier pack for this one), its manifest
    signed with `key` when it signs (a key that cannot sign stops here, before any file is written)."""
    key = key or ServiceKey()
    fingerprint = key.probe().fingerprint if key.signs else None
    _prepare(out, replace)
    params = {"from": start, "to": end}
    times = data_times(con)
    stamp = [iso(times.snapshot_at), iso(times.provisioning_at)]
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    for name, sql in QUERIES.items():
        try:
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            cursor = con.execute(sql, used)
        except duckdb.CatalogException:
            # e.g. no provisioning yet: the report still links this file, so it says so rather than being
            # absent
            tables[name] = ([], [])
            (out / f"{name}.csv").write_text(
                "note\nnot in this warehouse (nothing recorded yet)\n", encoding="utf-8"
            )
            continue
        tables[name] = ([d[0] for d in cursor.description], cursor.fetchall())
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            # Every CSV ends with the time of its data, the same on every row (docs/design.md, "Fresh after
            # every change"): a file copied out of the pack still says how old it is.
            writer.writerow([*tables[name][0], *STAMP_COLUMNS])
            writer.writerows([[spreadsheet_cell(v) for v in row] + stamp for row in tables[name][1]])
    population = tables["population"][1]
    changes = tables["changes"][1]
    risks = tables["risks"][1]
    metrics = {
        "period_from": start.isoformat(),
        "period_to": end.isoformat(),
        "population_rows": len(population),
        "users_with_access": len({r[6] for r in population}),
        "repositories_reached": len({(r[0], r[2]) for r in population if r[1] == "repository"}),
        "changes": len(changes),
        "added": sum(1 for r in changes if r[2] == "added"),
        "removed": sum(1 for r in changes if r[2] == "removed"),
        "changed": sum(1 for r in changes if r[2] == "changed"),
        "provisioning_actions": len(tables["provisioning"][1]),
        "open_risks": sum(1 for r in risks if r[10]),  # findings: not the `checked: none` or `unknown` rows
        "unknown_risk_rows": sum(1 for r in risks if r[11] == "unknown"),
        "review_decisions": len(tables["attestations"][1]),
    }
    try:
        syncs = syncs_drawn_on(con, start, end)
    except duckdb.CatalogException:  # a warehouse built before the sync summary existed
        syncs = []
    sync_times = _sync_times(con)
    parameters = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(),
        # the time of the data: the newest sync's completion and the provisioning log's newest entry
        "snapshot_at": stamp[0],
        "provisioning_log_at": stamp[1],
    }
    signing = (
        {
            "key": fingerprint,
            "principal": PRINCIPAL,
            "namespace": NAMESPACES["evidence"],
            "signature": SIGNATURE,
        }
        if fingerprint
        else None
    )
    manifest = manifest_of(out, parameters, syncs, QUERIES, provisioning_log_head(con), signing)
    report = out / REPORT
    report.write_text(_render(metrics, tables, manifest, sync_times), encoding="utf-8")
    manifest = write_manifest(out, manifest, key)
    metrics["signed"] = f"{SIGNATURE} (key {fingerprint})" if fingerprint else UNSIGNED
    return EvidencePack(out, report, metrics, manifest)


TEMPLATES = Environment(
    loader=PackageLoader("bitbucket_assets.reporting", "templates"),
    autoescape=True,
    keep_trailing_newline=True,
)
SECTIONS = (
    ("Population at the end of the period", "population"),
    ("Changes in the period", "changes"),
    ("Provisioning actions in the period", "provisioning"),
    ("Open risks at the end of the period", "risks"),
    (
        "Access reviews: campaigns and their completion (reviewer empty: the whole campaign)",
        "review_campaigns",
    ),
    ("Access reviews: every decision made in the period, and who signed it", "attestations"),
)
# Rendered in a block of its own (`change_control_section`), after the sections above.
CHANGE_CONTROL = "change_control"
TABLE_ROWS = 200  # per section in the report; the CSV beside it holds them all


def bar_chart_svg(title: str, counts: dict[str, int]) -> str | None:
    """A horizontal bar chart as inline SVG (Altair, as the dashboard draws, rendered by vl-convert): the
    report needs no network and no script. None when there is nothing to draw."""
    if not counts:
        return None
    frame = pd.DataFrame({"label": list(counts), "count": list(counts.values())})
    chart = (
        alt.Chart(frame, title=title)
        .mark_bar(color="#2563eb")
        .encode(
            x=alt.X("count:Q", title=None),
            y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=360)),
            tooltip=["label", "count"],
        )
        .properties(width=420)
    )
    return vl_convert.vegalite_to_svg(chart.to_json())


def _sync_times(con: duckdb.DuckDBPyConnection) -> SyncTimes:
    """Every complete sync's time and the first reconciliation's: what explains a sync not reconciled."""
    try:
        synced = [
            r[0] for r in con.execute("select synced_at from marts.fct_sync_summary order by 1").fetchall()
        ]
        first = con.execute("select min(synced_at) from marts.fct_reconciliations").fetchone()[0]
    except duckdb.CatalogException:
        return SyncTimes([], None)
    return SyncTimes(synced, first)


def change_control_section(table: tuple[list[str], list[tuple]]) -> dict:
    """The evidence of who can change production code: how many people can change it alone and in how many
    repositories, how many rows are unknown (rules not fully readable), and the first rows of the CSV."""
    columns, rows = table
    at = {name: i for i, name in enumerate(columns)}

    def count(column: str, value: object) -> int:
        return sum(1 for row in rows if row[at[column]] is value) if column in at else 0

    alone = [row for row in rows if "can_change_alone" in at and row[at["can_change_alone"]] is True]
    return {
        "name": CHANGE_CONTROL,
        "title": "Who can change production code (at the latest sync)",
        **vars(shown(columns, rows, TABLE_ROWS, CHANGE_CONTROL_DETAIL)),
        "people": len(rows),
        "alone": len(alone),
        "alone_repositories": len({(r[at["workspace_slug"]], r[at["repository_slug"]]) for r in alone}),
        "unknown": count("rules_fully_readable", False),
    }


def _render(metrics: dict, tables: dict, manifest: dict, sync_times: SyncTimes) -> str:
    changes_by_day = Counter(text(row[0])[:10] for row in tables["changes"][1])
    population = Counter(f"{row[1]} {row[7]}" for row in tables["population"][1])
    risks = Counter(row[0] for row in tables["risks"][1] if row[10])  # is_finding
    charts = [
        {"title": title, "svg": bar_chart_svg(title, counts)}
        for title, counts in (
            ("Changes per day", dict(sorted(changes_by_day.items()))),
            (
                "Access at the end of the period, by resource type and permission",
                dict(sorted(population.items())),
            ),
            ("Open risks", dict(risks.most_common())),
        )
    ]
    sections = [
        {
            "title": title,
            "name": name,
            # The population is counted here and listed in full in its CSV: a sample of it proves nothing.
            **vars(
                population_summary(*tables[name])
                if name == "population" and tables[name][0]
                else shown(*tables[name], TABLE_ROWS)
            ),
            "summary": name == "population",
        }
        for title, name in SECTIONS
    ]
    parameters = manifest["parameters"]
    syncs = [
        {
            **sync,
            "synced_at": when(sync["synced_at"]),
            "workspaces": ", ".join(sync["workspaces"] or []),
            "api_calls": sum((sync["api_calls"] or {}).values())
            if isinstance(sync["api_calls"], dict)
            else "",
            "anomalies": sum((sync["anomalies"] or {}).values())
            if isinstance(sync["anomalies"], dict)
            else 0,
            "reconciliation": reconciliation_note(sync, sync_times),
        }
        for sync in manifest["syncs"]
    ]
    return TEMPLATES.get_template("evidence.html").render(
        change_control=change_control_section(tables.get("change_control", ([], []))),
        metrics=metrics,
        charts=charts,
        sections=sections,
        period=(when(parameters["from"]), when(parameters["to"])),
        generated_at=when(parameters["generated_at"]),
        snapshot_at=when(parameters["snapshot_at"]) or "none (no complete sync)",
        provisioning_log_at=when(parameters["provisioning_log_at"]) or "no entry yet",
        syncs=syncs,
        files=manifest["files"],
        signing=manifest["signing"],
        unsigned=UNSIGNED,
        log_head=manifest["provisioning_log"],
    )
