"""The provisioning job, the expiry job and the sensor as Dagster runs them; the CLI around them."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from bitbucket_assets import services
from bitbucket_assets.defs.access_requests.jobs import (
    approved_requests_sensor,
    expire_jit_access,
    provision_group_membership,
)
from bitbucket_assets.defs.resources import BitbucketResource, ProvisioningResource
from bitbucket_assets.reporting.review import new_campaign, register_campaign, write_review
from bitbucket_assets.reporting.review_import import import_review, sign_review
from bitbucket_assets.settings import load_settings
from bitbucket_simulator import SIM_API_TOKEN
from tests.support.keys import service_keys
from tests.support.provisioning import NOW, add_request, log, statuses, writes
from tests.support.signing import add_signed_request, keypair, signed_policy


def resources(sim, db: str) -> dict:
    return {
        "bitbucket": BitbucketResource(
            api_url=sim.url, email=sim.email, api_token=SIM_API_TOKEN, requests_per_hour=1e7
        ),
        "provisioning": ProvisioningResource(),
        "duckdb": DuckDBResource(database=db),
    }


def test_job_dry_run_then_real_run(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    dry = provision_group_membership.execute_in_process(
        run_config={"ops": {"apply_approved_requests": {"config": {"dry_run": True}}}},
        resources=resources(sim, warehouse),
    )
    assert dry.success and sim.simulator.request_log == [] and statuses(warehouse)["r1"][0] == "pending"
    real = provision_group_membership.execute_in_process(resources=resources(sim, warehouse))
    assert real.success and statuses(warehouse)["r1"][0] == "applied"
    assert [(r[0], r[2]) for r in log(warehouse)] == [("r1", "planned"), ("r1", "applied")]
    with duckdb.connect(warehouse, read_only=True) as con:
        run_ids = [
            r[0]
            for r in con.execute(
                "select run_id from provisioning.provisioning_log order by attempted_at"
            ).fetchall()
        ]
    assert run_ids == [dry.run_id, real.run_id]


def test_expiry_job(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "jit", sim.user("finn"), "leads", expires_at=NOW + timedelta(days=1))
    assert provision_group_membership.execute_in_process(resources=resources(sim, warehouse)).success
    with duckdb.connect(warehouse) as con:  # time passes
        con.execute(
            "update provisioning.access_requests set expires_at = ? where request_id = 'jit'",
            [NOW - timedelta(days=1)],
        )
    assert expire_jit_access.execute_in_process(resources=resources(sim, warehouse)).success
    assert statuses(warehouse)["jit"][0] == "expired" and len(writes(sim)) == 2


def test_sensor_requests_a_run_only_when_approved_requests_wait(make_sim, warehouse) -> None:
    sim = make_sim()
    duck = DuckDBResource(database=warehouse)
    with dg.build_sensor_context(resources={"duckdb": duck}) as context:
        assert isinstance(approved_requests_sensor(context), dg.SkipReason)
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    with dg.build_sensor_context(resources={"duckdb": duck}) as context:
        first = approved_requests_sensor(context)
    assert isinstance(first, dg.RunRequest)
    # While a writer holds the file the sensor skips instead of failing.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({warehouse!r}); print('locked', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with dg.build_sensor_context(resources={"duckdb": duck}) as context:
            busy = approved_requests_sensor(context)
        assert isinstance(busy, dg.SkipReason) and "busy" in busy.skip_message
    finally:
        holder.kill()
        holder.wait()


def test_signed_requests_through_the_sensor_the_job_and_the_expiry_job(make_sim, warehouse, tmp_path) -> None:
    """A signed row inserted with SQL (no approved_by: the signer is the approver) starts the job through the
    sensor; the job applies it with the deployment's policy; an unsigned protected change is rejected; the
    expiry job ends the grant."""
    sim = make_sim()
    key = keypair(tmp_path, "olga")
    _, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": key})
    signed = {"approved_by": None, "allow_protected": True, "expires_at": NOW + timedelta(days=1)}
    add_signed_request(warehouse, "signed", sim.user("finn"), "leads", key, **signed)
    add_request(warehouse, "unsigned", sim.user("zoe"), "leads", allow_protected=True)
    with dg.build_sensor_context(resources={"duckdb": DuckDBResource(database=warehouse)}) as context:
        assert isinstance(approved_requests_sensor(context), dg.RunRequest)
    deployed = {
        **resources(sim, warehouse),
        "provisioning": ProvisioningResource(approver_policy=policy, protected_groups="leads"),
    }
    run = provision_group_membership.execute_in_process(resources=deployed)
    assert run.success
    got = statuses(warehouse)
    assert got["signed"] == ("applied", None) and got["unsigned"][1].startswith(
        "unsigned: the approver policy"
    )
    with duckdb.connect(warehouse) as con:  # time passes
        con.execute(
            "update provisioning.access_requests set expires_at = ? where request_id = 'signed'",
            [NOW - timedelta(minutes=1)],
        )
    assert expire_jit_access.execute_in_process(resources=deployed).success
    assert statuses(warehouse)["signed"][0] == "expired" and [w.method for w in writes(sim)] == [
        "PUT",
        "DELETE",
    ]


def test_a_signed_review_revokes_through_the_sensor_and_the_job(make_sim, warehouse, tmp_path) -> None:
    """A signed review's revocation waits as an approved request: the sensor starts the job, and the job,
    with the deployment's policy, checks the signed file again and applies it."""
    sim = make_sim()
    key = keypair(tmp_path, "olga")
    approvals, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": key})
    path = tmp_path / "review.csv"
    with duckdb.connect(warehouse, read_only=True) as con:
        campaign = new_campaign(con, datetime.now(UTC), "tiny-co")
    with duckdb.connect(warehouse) as con:
        register_campaign(con, campaign, datetime.now(UTC))
    write_review(campaign.rows, path, "csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for row in rows:
        if row["user_display_name"] == "Ben Okafor" and row["resource_key"] == "payments-api":
            row["decision"] = "revoke"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sign_review(path, key)
    with duckdb.connect(warehouse) as con:
        assert import_review(con, path, approvals=approvals).created == 1
    with dg.build_sensor_context(resources={"duckdb": DuckDBResource(database=warehouse)}) as context:
        assert isinstance(approved_requests_sensor(context), dg.RunRequest)
    deployed = {**resources(sim, warehouse), "provisioning": ProvisioningResource(approver_policy=policy)}
    assert provision_group_membership.execute_in_process(resources=deployed).success
    assert [(status, reason) for status, reason in statuses(warehouse).values()] == [("applied", None)]
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members
    assert [w.method for w in writes(sim)] == ["DELETE"]


def test_a_log_rolled_back_in_every_table_shows_against_the_head_dagster_recorded(
    make_sim, warehouse, tmp_path
) -> None:
    """Each provisioning run records the log's head in Dagster's event log (DAGSTER_HOME), outside the
    warehouse: a log cut back consistently (its last row, that row's signed head and the request it applied)
    verifies on its own, but not against that record."""
    sim = make_sim()
    signer, verifier = service_keys(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    common = {"duckdb_path": warehouse, "dagster_home": str(home)}
    settings = load_settings(
        bitbucket_api_url=sim.url,
        bitbucket_email=sim.email,
        bitbucket_api_token=SIM_API_TOKEN,
        bitbucket_requests_per_hour=1e7,
        bitbucket_signing_key=str(signer.private_key),
        **common,
    )
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    add_request(warehouse, "r2", sim.user("zoe"), "leads")
    summary = services.provision(settings)
    assert summary.signed and summary.head_seq == 2
    auditor = load_settings(bitbucket_signing_public_key=str(verifier.public_keys), **common)
    intact = services.verify_provisioning_log(auditor)
    assert intact.intact, intact.problems
    assert f"the head Dagster run {summary.run_id} (" in " ".join(intact.notes)
    with duckdb.connect(warehouse) as con:
        con.execute("delete from provisioning.provisioning_log where seq = 2")
        con.execute("delete from provisioning.log_heads where seq = 2")
        con.execute("delete from provisioning.access_requests where request_id = 'r2'")
    problems = services.verify_provisioning_log(auditor).problems
    assert len(problems) == 1 and problems[0].startswith(f"Dagster run {summary.run_id} (")
    assert problems[0].endswith(
        f"recorded the log's head {summary.head}, which the log no longer holds: rows were cut or rewritten "
        "since"
    )
