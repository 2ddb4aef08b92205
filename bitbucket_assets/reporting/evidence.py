"""The audit evidence pack: a self-contained HTML report plus the CSVs behind every number in it.

For a period [from, to]: the population at `to` (who could reach what, and why), every change in the
period, every provisioning action with requester, approver and time, and the open risks at `to`.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from .safe_text import spreadsheet_cell, text

DORMANT_DAYS = 90

QUERIES = {
    "population": """
        select workspace_slug, resource_type, resource_key, resource_name, user_display_name, user_account_id,
               user_uuid, permission, array_to_string(grant_paths, '; ') as grant_paths
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
    "provisioning": """
        select l.attempted_at, l.request_id, l.workspace_slug, l.group_slug, l.user_uuid, l.action, l.outcome,
               l.http_status, l.error, l.requested_by, l.approved_by, l.approval_ref, r.approved_at, r.expires_at,
               l.run_id
        from provisioning.provisioning_log l
        left join provisioning.access_requests r using (request_id)
        where not l.dry_run and l.attempted_at >= $from and l.attempted_at <= $to
        order by l.attempted_at
    """,
    "risks": f"""
        with held as (select * from marts.access_as_of($to)),
        eff as (select * from marts.effective_access_as_of($to)),
        members as (
            select m.* from staging.stg_bitbucket__workspace_members m
            join staging.stg_bitbucket__workspace_observations o on m.sync_id = o.sync_id
             and m.workspace_slug = o.workspace_slug and o.is_latest_for_workspace
        )
        select 'workspace owner' as risk, workspace_slug, 'workspace' as resource_type, resource_key,
               principal_name as user_display_name, principal_id as user_uuid, 'admin on every repository' as detail
        from held where resource_type = 'workspace' and permission = 'owner'
        union all
        select 'direct admin grant', workspace_slug, resource_type, resource_key, principal_name, principal_id,
               'admin configured for the user directly'
        from held where principal_type = 'user' and grant_source = 'direct' and permission = 'admin'
          and resource_type in ('repository', 'project')
        union all
        select 'access only through direct grants', workspace_slug, 'user', '', user_display_name, user_uuid,
               count(*) || ' resources, none through a group or project'
        from eff where resource_type = 'repository'
        group by workspace_slug, user_display_name, user_uuid
        having bool_and(len(list_filter(grant_paths, lambda p: p not like 'direct%')) = 0)
        union all
        select 'dormant account', m.workspace_slug, 'user', '', u.display_name, m.user_uuid,
               'last accessed ' || strftime(m.last_accessed, '%Y-%m-%d')
        from members m join marts.dim_users u using (user_uuid)
        where m.last_accessed < cast($to as timestamptz) - interval {DORMANT_DAYS} days
        union all
        -- Bitbucket omits last_accessed for workspaces administered from admin.atlassian.com: say "unknown"
        -- for the workspace rather than list nobody.
        select 'dormant accounts unknown', workspace_slug, 'workspace', workspace_slug, '', '',
               'Bitbucket reports no last access for this workspace''s ' || count(*) || ' members (administered '
               || 'from admin.atlassian.com?): check dormant accounts in Atlassian Administration'
        from members group by workspace_slug having bool_and(last_accessed is null)
        union all
        select 'access held outside the workspace membership', e.workspace_slug, 'user', '', e.user_display_name,
               e.user_uuid,
               coalesce(u.user_type, 'user') || case when u.is_former_user then ' (deleted account)' else '' end
               || ', not a member; reaches ' || count(*) || ' resources through direct grants'
        from eff e left join marts.dim_users u using (user_uuid)
        where not exists (select 1 from held h where h.resource_type = 'workspace' and h.principal_type = 'user'
                          and h.workspace_slug = e.workspace_slug and h.principal_id = e.user_uuid)
        group by e.workspace_slug, e.user_display_name, e.user_uuid, u.user_type, u.is_former_user
        union all
        select 'repository without an admin', r.workspace_slug, 'repository', r.repository_slug, '', '',
               'no admin path other than the workspace owners'
        from marts.dim_repositories r
        where not exists (select 1 from held h
                          where h.resource_type = 'repository' and h.resource_id = r.repository_uuid
                          and h.permission = 'admin' and h.grant_source <> 'workspace')
        union all
        -- Public: anyone, signed in or not, can read and clone it (support.atlassian.com). Bitbucket's
        -- effective-permission list names no such reader, so neither do the marts: one risk row says it.
        select 'public repository', workspace_slug, 'repository', repository_slug, 'anyone', '',
               'public: anyone, signed in or not, can read and clone it'
        from marts.dim_repositories where not is_private
        {{LEAVERS}}
        order by 1, 2, 4, 5
    """,
}


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111 }
.cards { display: flex; flex-wrap: wrap; gap: 1rem }
.card { border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1rem; min-width: 9rem }
.n { font-size: 1.6rem; font-weight: 600 }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 1rem }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left }
"""


LEAVERS_RISK = """
        union all
        select 'access still held by a leaver', e.workspace_slug, 'user', '', e.user_display_name, e.user_uuid,
               'left on ' || strftime(l.left_on, '%Y-%m-%d') || '; still reaches ' || count(*) || ' resources'
        from marts.effective_access_as_of($to) e
        join provisioning.leavers l on l.user_id in (e.user_uuid, e.user_account_id)
        where l.left_on <= cast($to as date)
        group by e.workspace_slug, e.user_display_name, e.user_uuid, l.left_on
"""


def risks_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The risk query, with the leavers' risk when a leavers list exists."""
    has_leavers = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'provisioning' and table_name = 'leavers'"
    ).fetchone()[0]
    return QUERIES["risks"].replace("{LEAVERS}", LEAVERS_RISK if has_leavers else "")


@dataclass
class EvidencePack:
    directory: Path
    report: Path
    metrics: dict[str, int | str]


class EvidenceOutputError(ValueError):
    """The output directory holds files that are not an evidence pack this tool may replace."""


PACK_FILES = ("evidence.html", *(f"{name}.csv" for name in QUERIES))


def _prepare(out: Path, replace: bool) -> None:
    """An empty or new directory; with `replace`, a directory holding only an earlier pack, emptied of it, so
    that no file of the earlier pack is left next to the new report."""
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return
    foreign = [name for name in present if name not in PACK_FILES]
    if not replace or foreign:
        what = f"files that are not an evidence pack ({', '.join(foreign[:5])})" if foreign else "an evidence pack"
        hint = "choose an empty or new directory" + ("" if foreign else ", or pass --replace")
        raise EvidenceOutputError(f"{out} already holds {what}: {hint}")
    for name in present:
        (out / name).unlink()


def build_evidence_pack(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, out: Path, replace: bool = False
) -> EvidencePack:
    """Write the pack into `out` (new or empty; `replace` swaps an earlier pack for this one)."""
    _prepare(out, replace)
    params = {"from": start, "to": end}
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    for name, sql in QUERIES.items():
        sql = risks_sql(con) if name == "risks" else sql
        try:
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            cursor = con.execute(sql, used)
        except duckdb.CatalogException:
            # e.g. no provisioning yet: the report still links this file, so it says so rather than being absent
            tables[name] = ([], [])
            (out / f"{name}.csv").write_text("note\nnot in this warehouse (nothing recorded yet)\n", encoding="utf-8")
            continue
        tables[name] = ([d[0] for d in cursor.description], cursor.fetchall())
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(tables[name][0])
            writer.writerows([[spreadsheet_cell(v) for v in row] for row in tables[name][1]])
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
        "open_risks": len(risks),
    }
    report = out / "evidence.html"
    report.write_text(_render(metrics, tables), encoding="utf-8")
    return EvidencePack(out, report, metrics)


def _bars(title: str, counts: dict[str, int]) -> str:
    """A small inline SVG bar chart: the report needs no network and no script."""
    if not counts:
        return f"<h3>{html.escape(title)}</h3><p>Nothing in this period.</p>"
    top = max(counts.values()) or 1
    rows = []
    for i, (label, n) in enumerate(counts.items()):
        width = int(360 * n / top)
        rows.append(
            f'<text x="0" y="{i * 22 + 15}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="250" y="{i * 22 + 3}" width="{width}" height="16" fill="#2563eb"/>'
            f'<text x="{255 + width}" y="{i * 22 + 15}" font-size="12">{n}</text>'
        )
    return (f"<h3>{html.escape(title)}</h3><svg width='680' height='{len(counts) * 22 + 6}' role='img' "
            f"aria-label='{html.escape(title)}'>{''.join(rows)}</svg>")  # fmt: skip


def _table(name: str, columns: list[str], rows: list[tuple], limit: int = 200) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(text(v))}</td>" for v in row) + "</tr>" for row in rows[:limit])
    more = f"<p>{len(rows) - limit} more rows in {name}.csv.</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _render(metrics: dict, tables: dict) -> str:
    changes_by_day: dict[str, int] = {}
    for row in tables["changes"][1]:
        day = text(row[0])[:10]
        changes_by_day[day] = changes_by_day.get(day, 0) + 1
    permissions: dict[str, int] = {}
    for row in tables["population"][1]:
        permissions[f"{row[1]} {row[7]}"] = permissions.get(f"{row[1]} {row[7]}", 0) + 1
    risk_counts: dict[str, int] = {}
    for row in tables["risks"][1]:
        risk_counts[row[0]] = risk_counts.get(row[0], 0) + 1
    cards = "".join(
        f'<div class="card"><div class="n" data-metric="{k}">{v}</div><div>{k.replace("_", " ")}</div></div>'
        for k, v in metrics.items()
        if isinstance(v, int)
    )
    sections = [
        ("Population at the end of the period", "population"),
        ("Changes in the period", "changes"),
        ("Provisioning actions in the period", "provisioning"),
        ("Open risks at the end of the period", "risks"),
    ]
    body = "".join(
        f"<h2>{html.escape(title)}</h2><p>All rows: <a href='{name}.csv'>{name}.csv</a></p>"
        + _table(name, *tables[name])
        for title, name in sections
    )
    period = f"{html.escape(metrics['period_from'])} to {html.escape(metrics['period_to'])}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Bitbucket access evidence {metrics["period_from"][:10]} to {metrics["period_to"][:10]}</title>
<style>{STYLE}</style>
</head><body>
<h1>Bitbucket Cloud access evidence</h1>
<p>Period {period}; generated {datetime.now(UTC).isoformat()}
from the complete syncs in the warehouse. Every number below comes from the CSV files beside this report.</p>
<div class="cards">{cards}</div>
{_bars("Changes per day", changes_by_day)}
{_bars("Access at the end of the period, by resource type and permission", dict(sorted(permissions.items())))}
{_bars("Open risks", risk_counts)}
{body}
<script type="application/json" id="metrics">{json.dumps(metrics)}</script>
</body></html>
"""
