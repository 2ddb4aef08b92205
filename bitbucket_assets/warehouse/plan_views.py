"""Whether the refresh plan's views in a warehouse are the ones the current dbt project would build.

The plan views (dbt_project/models/plan) read the raw tables of the sync in progress; they change only
when their code does. Rebuilding them costs a dbt process per sync (start, parse, run: seconds, more than the
views' own work), so each view carries, as its DuckDB comment, a fingerprint of everything that decides its
SQL: its model's code and configuration, the macros it calls (transitively), the sources it reads, dbt's and
the adapter's versions, and the catalog it was built in (a copied warehouse file has another catalog name,
and dbt's views name their sources by catalog). A sync rebuilds the views when any view's comment differs,
and only then; and not before the warehouse has a complete snapshot, since only an incremental sync reads
them (`needed`). Outside a job, `build` makes them as the job does (the demo's simulated days).

Anyone who can write the warehouse can also change the views or their comments: the fingerprint guards against
stale code, not against the warehouse's writers (docs/design.md, "Trust").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import duckdb

from .dbt_runs import PROJECT_MANIFEST, run_dbt

PLAN_LAYER = "plan"
SELECTION = f"path:models/{PLAN_LAYER}"  # dbt's selector of the plan views


@dataclass(frozen=True, order=True)
class PlanView:
    schema: str
    name: str


def plan_views(manifest: Mapping[str, Any]) -> list[PlanView]:
    """The views of dbt's plan layer, by the schema and name dbt gives them."""
    return sorted(PlanView(node["schema"], node["alias"] or node["name"]) for node in _plan_nodes(manifest))


def fingerprint(manifest: Mapping[str, Any], catalog: str) -> str:
    """A digest of everything that decides the plan views' SQL in the warehouse whose catalog is `catalog`."""
    nodes = _plan_nodes(manifest)
    macros = _macros_called(manifest, [m for node in nodes for m in node["depends_on"]["macros"]])
    sources = sorted(
        {dep for node in nodes for dep in node["depends_on"]["nodes"] if dep.startswith("source.")}
    )
    parts: dict[str, Any] = {
        "catalog": catalog,
        "dbt": manifest["metadata"].get("dbt_version"),
        "adapter": version("dbt-duckdb"),
        "models": {
            node["unique_id"]: [node["checksum"]["checksum"], node["config"], node["depends_on"]["nodes"]]
            for node in nodes
        },
        "macros": {name: manifest["macros"][name]["macro_sql"] for name in sorted(macros)},
        "sources": {
            name: [manifest["sources"][name]["schema"], manifest["sources"][name]["identifier"]]
            for name in sources
        },
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def needed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a sync may read the plan views: only an incremental one does, and a workspace syncs
    incrementally only from a complete snapshot of it (extraction/refresh.py, `plan_workspace`). Before the
    warehouse has one, every workspace is read in full: building the views would cost a dbt process (start,
    a parse of the whole project for this new warehouse, run) for nothing; the next sync builds them."""
    found = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'raw' and table_name = 'syncs'"
    ).fetchone()[0]
    return (
        bool(found)
        and con.execute("select count(*) from raw.syncs where status = 'complete'").fetchone()[0] > 0
    )


def build(database: str) -> None:
    """Build the plan views with dbt in the warehouse's target directory and with its vars, as the sync job
    runs dbt (the job's later dbt runs reuse this parse of the project), and mark them this project's. For a
    warehouse synced outside the job (the demo's simulated days) whose next sync is to be incremental."""
    done = run_dbt(database, "run", "--quiet", "--select", SELECTION)
    if done.returncode != 0:
        # dbt writes its errors to stdout; what fails before it starts (a broken install) goes to stderr.
        said = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"dbt could not build the plan views in {database}: {said}")
    with duckdb.connect(database) as con:
        mark_current(con, json.loads(PROJECT_MANIFEST.read_text()))


def are_current(con: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any]) -> bool:
    """True when every plan view exists and carries this project's fingerprint for this warehouse."""
    views = plan_views(manifest)
    if not views:
        return False
    expected = fingerprint(manifest, _catalog(con))
    rows = con.execute(
        "select schema_name, view_name, comment from duckdb_views() where database_name = current_database()"
    ).fetchall()
    comments = {(schema, name): comment for schema, name, comment in rows}
    return all(comments.get((view.schema, view.name)) == expected for view in views)


def mark_current(con: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any]) -> None:
    """Record on each plan view that it was built from this project for this warehouse."""
    expected = fingerprint(manifest, _catalog(con))
    for view in plan_views(manifest):
        con.execute(f"comment on view {_quoted(view.schema)}.{_quoted(view.name)} is '{expected}'")


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select current_database()").fetchone()[0]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _plan_nodes(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(
        (
            node
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["fqn"][1:2] == [PLAN_LAYER]
        ),
        key=lambda node: node["unique_id"],
    )


def _macros_called(manifest: Mapping[str, Any], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in manifest["macros"]:
            continue
        seen.add(name)
        stack.extend(manifest["macros"][name]["depends_on"]["macros"])
    return seen
