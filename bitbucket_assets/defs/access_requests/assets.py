"""The provisioning tables as assets: the inputs people fill (requests, leavers), created before the dbt build
that reads them, and the provisioning log, which the provisioning jobs write (docs/provisioning.md)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...provisioning.tables import create_provisioning_tables
from ...warehouse.files import WRITER_POOL

GROUP = "provisioning"
ACCESS_REQUESTS = dg.AssetKey(["provisioning", "access_requests"])
LEAVERS = dg.AssetKey(["provisioning", "leavers"])
PROJECT_BRANCH_RULES = dg.AssetKey(["provisioning", "project_branch_rules"])
PROVISIONING_LOG = dg.AssetKey(["provisioning", "provisioning_log"])

# What provisioning validates a request against: the latest snapshot's groups, members and workspaces.
SNAPSHOT_READ = [
    dg.AssetKey(["marts", "dim_groups"]),
    dg.AssetKey(["marts", "dim_workspaces"]),
    dg.AssetKey(["staging", "stg_bitbucket__workspace_members"]),
    dg.AssetKey(["staging", "stg_bitbucket__group_members"]),
    dg.AssetKey(["staging", "stg_bitbucket__workspace_observations"]),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ACCESS_REQUESTS,
            group_name=GROUP,
            kinds={"duckdb"},
            description="Group-membership requests (input): imported from files, inserted with SQL, or made "
            "by a review import; the provisioning job maintains their `status`.",
        ),
        dg.AssetSpec(
            LEAVERS,
            group_name=GROUP,
            kinds={"duckdb"},
            description="People who left (input, from HR or IT offboarding): the risks list any access they "
            "still hold.",
        ),
        dg.AssetSpec(
            PROJECT_BRANCH_RULES,
            group_name=GROUP,
            kinds={"duckdb"},
            description="Project-level branch restrictions as an administrator saw them (input: no "
            "API serves them): a repository's rules are fully readable only where its project was checked "
            "and has none.",
        ),
    ],
    pool=WRITER_POOL,
    description="Creates the provisioning schema's tables (and the columns later versions added), empty "
    "until people fill them, so the dbt models that read them always find them.",
)
def provisioning_tables(duckdb: DuckDBResource):
    with duckdb.get_connection() as con:
        create_provisioning_tables(con)
        counts = {
            key: con.execute(f"select count(*) from {'.'.join(key.path)}").fetchone()[0]
            for key in (ACCESS_REQUESTS, LEAVERS, PROJECT_BRANCH_RULES)
        }
    for key, rows in counts.items():
        yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": rows})


# Written by the provisioning and expiry jobs (ops, not an asset's function): each run records a
# materialization
# with the log's head, so the head is kept in Dagster's event log, outside the warehouse.
provisioning_log = dg.AssetSpec(
    PROVISIONING_LOG,
    deps=[ACCESS_REQUESTS, *SNAPSHOT_READ],
    group_name=GROUP,
    kinds={"duckdb"},
    description="One hash-chained row per provisioning attempt (provisioning/audit_log.py), written by the "
    "jobs provision_group_membership and expire_jit_access from the requests and the latest snapshot.",
)
