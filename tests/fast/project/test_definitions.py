"""The Dagster definitions as a graph: they load, every table the pipeline reads is an asset in it, and each
command loads only the definitions it runs."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys

import dagster as dg
import pytest

from bitbucket_assets import services
from bitbucket_assets.defs import sync_job
from bitbucket_assets.settings import load_settings
from tests.support import ROOT

SETTINGS = load_settings(duckdb_path="md:smoke")  # names no file: nothing is created
RELATION = re.compile(
    r"\b(raw|staging|intermediate|marts|plan|provisioning|maintenance|reporting)\.([a-z_]+)\b"
)
# Tables a step keeps for itself (its checkpoints, intents, logs): read only by the code that writes them.
BOOKKEEPING = {
    "raw.sync_checkpoints": "the extraction's checkpoints (a killed sync resumes from them)",
    "provisioning.provisioning_intents": "provisioning's intents (a killed run finishes from them)",
    "provisioning.review_campaigns": "review export/import: the campaigns exported",
    "provisioning.review_items": "review export/import: the rows each campaign exported",
    "provisioning.review_files": "review import: each signed file (provisioning reads it again to check a "
    "review's revocation)",
    "provisioning.review_decisions": "review import: every decision, the attestations",
    "provisioning.attestations": "a documented view over the decisions for reports",
    "provisioning.review_completion": "a documented view of each campaign's completion for reports",
    "provisioning.actions": "a documented view over the provisioning log for reports",
    "provisioning.log_heads": "the provisioning log's signed heads, written with each of its rows",
    "maintenance.history_clustering": "history_order's own log of its rewrites",
    "reporting.evidence_packs": "the evidence command's record of the packs it wrote",
}


def _definitions() -> dg.Definitions:
    from bitbucket_assets.definitions import build_definitions

    return build_definitions(SETTINGS)


def test_definitions_load_with_their_jobs_schedules_and_sensors() -> None:
    defs = _definitions()
    assert {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")} == {
        "bitbucket_sync",
        "provision_group_membership",
        "expire_jit_access",
    }
    assert defs.resolve_schedule_def("daily_bitbucket_sync").job_name == "bitbucket_sync"
    assert defs.resolve_schedule_def("jit_expiry_every_15_minutes").job_name == "expire_jit_access"
    assert defs.resolve_sensor_def("approved_requests_sensor").job_name == "provision_group_membership"
    assert defs.resolve_job_def("bitbucket_sync").description


def _relations_in_code() -> set[str]:
    """Every `schema.table` named in a string of the pipeline's Python (docstrings and prose excluded)."""
    found = set()
    for folder in ("extraction", "warehouse", "provisioning", "defs"):
        for path in (ROOT / "bitbucket_assets" / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            docs = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                    found |= {f"{s}.{t}" for s, t in RELATION.findall(node.value)}
    return found


def test_every_table_the_pipeline_reads_is_an_asset_in_the_graph() -> None:
    keys = {".".join(key.path) for key in _definitions().resolve_asset_graph().get_all_asset_keys()}
    relations = _relations_in_code()
    assert {
        "plan.repository_refresh_plan",
        "marts.fct_grant_history",
        "provisioning.access_requests",
    } <= relations
    assert sorted(relations - keys - set(BOOKKEEPING)) == []


def test_the_graph_shows_what_reads_what() -> None:
    graph = _definitions().resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}

    # raw -> plan -> raw: the extraction reads the refresh plan's views, built over the raw schema.
    assert {"plan/repository_list_freshness", "plan/repository_refresh_plan", "raw_schema"} <= parents(
        "raw/syncs"
    )
    assert parents("plan/repository_list_freshness") == {"raw_schema"}
    # provisioning <-> marts: the risks read the leavers; provisioning reads the latest snapshot.
    assert "provisioning/leavers" in parents("marts/fct_access_risks")
    assert {"provisioning/access_requests", "marts/dim_groups"} <= parents("provisioning/provisioning_log")
    # The analysts' table macros are models over the history; retention reads the history and prunes raw.
    assert "marts/fct_grant_history" in parents("marts/access_as_of")
    assert "provisioning/leavers" in parents("marts/access_risks_as_of")
    assert {"marts/fct_grant_history", "raw/syncs"} <= parents("raw_snapshot_retention")


def test_a_command_loads_only_what_it_runs() -> None:
    from bitbucket_assets.defs.resources import with_resources

    sync = with_resources(SETTINGS, sync_job.definitions())
    assert [job.name for job in sync.resolve_all_job_defs() if not job.name.startswith("__")] == [
        "bitbucket_sync"
    ]
    assert not sync.sensors and not sync.schedules
    provisioning = services.provisioning_definitions(SETTINGS)
    assert {job.name for job in provisioning.resolve_all_job_defs() if not job.name.startswith("__")} == {
        "provision_group_membership",
        "expire_jit_access",
    }
    assert not [a for a in provisioning.assets if isinstance(a, dg.AssetsDefinition) and a.is_executable]
    assert "dbt" in sync.resources and "dbt" not in provisioning.resources


def test_a_provisioning_command_does_not_import_dbt(tmp_path) -> None:
    """dagster-dbt (and dbt with it) costs about 1.4 s of CPU to import: a provisioning run, which runs no
    dbt, leaves it out. In a process of its own, since this one has imported it already: a dry run of the job
    on a new warehouse (no request, so no call to Bitbucket), then both jobs resolved."""
    probe = """
import sys
from bitbucket_assets import services
from bitbucket_assets.settings import load_settings
settings = load_settings(duckdb_path=DATABASE, bitbucket_api_url="http://127.0.0.1:9")
print(services.provision(settings, dry_run=True).lines()[0])
services.provisioning_definitions(settings).resolve_job_def("expire_jit_access")
print(sorted({m.split(".")[0] for m in sys.modules} & {"dbt", "dagster_dbt"}))
""".replace("DATABASE", repr(str(tmp_path / "w.duckdb")))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["plan (dry run): planned 0, rejected 0", "[]"]


def test_every_job_schedule_and_sensor_says_what_it_does() -> None:
    """What the Dagster UI shows beside each name: no job, schedule or sensor without a description."""
    defs = _definitions()
    repository = defs.get_repository_def()
    named = [
        *(job for job in repository.get_all_jobs() if not job.name.startswith("__")),
        *repository.schedule_defs,
        *repository.sensor_defs,
    ]
    assert named and [item.name for item in named if not (item.description or "").strip()] == []


def test_the_dbt_resource_skips_what_dagster_dbt_would_do_before_each_dbt_command(monkeypatch) -> None:
    """WarehouseDbt (defs/dbt_models/project.py) replaces two private steps of `DbtCliResource.cli`: if an
    upgrade of dagster-dbt renames them, the overrides would silently stop working, so this fails instead."""
    import dagster_dbt.core.resource
    import dbt.version
    from dagster_dbt import DbtCliResource

    from bitbucket_assets.defs.dbt_models.project import WarehouseDbt, dbt_resource

    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli and "self._initialize_dbt_core_adapter(args)" in cli
    # The version, without running `dbt --version` (dagster-dbt runs it with `check_output`).
    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", lambda *a, **k: pytest.fail("ran dbt"))
    resource = dbt_resource()
    assert isinstance(resource, WarehouseDbt) and str(resource._cli_version) == dbt.version.__version__
    # The project never asks dagster-dbt for what the adapter would serve.
    code = "\n".join(path.read_text() for path in (ROOT / "bitbucket_assets").rglob("*.py"))
    assert ".fetch_row_counts(" not in code and ".fetch_column_metadata(" not in code
