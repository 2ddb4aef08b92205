"""`requests import` and `provision` as a user runs them: plans, changes, refusals, the policy line."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import duckdb

from bitbucket_assets.provisioning.audit_log import verify_log
from bitbucket_assets.service_key import UNSIGNED
from bitbucket_simulator import SIM_API_TOKEN
from tests.support import CLI
from tests.support.keys import service_keys
from tests.support.provisioning import REQUESTS_HEADER as HEADER
from tests.support.provisioning import add_request, provision, rechain, writes


def test_cli_provision(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    add_request(warehouse, "r2", sim.user("zoe"), "leads", approved_by="ana@tiny.example")
    env = {
        **os.environ,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "DUCKDB_PATH": warehouse,
        "BITBUCKET_REQUESTS_PER_HOUR": "1000000",
    }
    dry = subprocess.run(
        [CLI, "provision", "--dry-run"], capture_output=True, text=True, env=env, timeout=120
    )
    assert dry.returncode == 0, dry.stderr[-1500:]
    # People, groups and workspaces by name (ids stay in the log); no Dagster line before the plan.
    ws = sim.org.workspaces["tiny-co"]
    where = f"to {ws.groups['leads'].name} in {ws.name}"
    finn, zoe = (f"{u.display_name} ({u.nickname})" for u in (sim.user("finn"), sim.user("zoe")))
    assert dry.stdout.startswith("plan (dry run): planned 1, rejected 1\n")
    assert f"r1: add {finn} {where} -> planned" in dry.stdout and writes(sim) == []
    assert f"r2: add {zoe} {where} -> rejected" in dry.stdout and "{" not in dry.stdout.split("log head")[0]
    real = subprocess.run([CLI, "provision"], capture_output=True, text=True, env=env, timeout=120)
    assert (
        real.returncode == 0
        and f"r1: add {finn} {where} -> applied [bitbucket-1.0] (HTTP 200)" in real.stdout
    )
    assert SIM_API_TOKEN not in real.stdout + real.stderr
    # With DAGSTER_HOME, the run and the log's head are kept in Dagster's instance, outside the warehouse.
    home = tmp_path / "dagster_home"
    home.mkdir()
    add_request(warehouse, "r3", sim.user("zoe"), "leads")
    kept = subprocess.run(
        [CLI, "provision"],
        capture_output=True,
        text=True,
        env={**env, "DAGSTER_HOME": str(home)},
        timeout=120,
    )
    assert kept.returncode == 0 and f"r3: add {zoe} {where} -> applied" in kept.stdout, kept.stderr[-1500:]
    printed_head = next(line for line in kept.stdout.splitlines() if "log head:" in line).split()[2]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "provision_group_membership"
        recorded = instance.get_latest_materialization_event(
            dg.AssetKey(["provisioning", "provisioning_log"])
        )
        assert recorded.run_id == run.run_id
        assert recorded.asset_materialization.metadata["log_head"].value == printed_head


def test_cli_signs_the_log_and_an_auditor_with_the_public_key_finds_a_rewrite(make_sim, warehouse, tmp_path):
    sim = make_sim()
    signer, verifier = service_keys(tmp_path)
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    add_request(warehouse, "r2", sim.user("zoe"), "leads")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DAGSTER_HOME"))},
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "DUCKDB_PATH": warehouse,
        "BITBUCKET_REQUESTS_PER_HOUR": "1000000",
        "BITBUCKET_SIGNING_KEY": str(signer.private_key),
    }
    done = subprocess.run([CLI, "provision"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "(row 2; signed with the service's key; `provision --verify-log` checks" in done.stdout
    checked = subprocess.run([CLI, "check"], capture_output=True, text=True, env=env, timeout=120)
    assert "signing: the provisioning log's head and evidence manifests are signed with key SHA256:" in (
        checked.stdout
    )
    # Someone rewrites who approved r1 and recomputes the chain; an auditor holds only the public key.
    with duckdb.connect(warehouse) as con:
        con.execute("update provisioning.provisioning_log set approved_by = 'ceo@tiny.example' where seq = 1")
    rechain(warehouse)
    auditor = {
        **{k: v for k, v in env.items() if not k.startswith("BITBUCKET_")},
        "BITBUCKET_SIGNING_PUBLIC_KEY": str(verifier.public_keys),
    }
    out = subprocess.run(
        [CLI, "provision", "--verify-log"], capture_output=True, text=True, env=auditor, timeout=120
    )
    assert out.returncode == 1 and "provisioning log ALTERED: 1 problem(s)" in out.stdout
    assert "  row 1 is not the row that was signed (its hash differs from the signed head)" in out.stdout
    # A private key others can read is refused, by `check` and before any call by `provision`.
    signer.private_key.chmod(0o644)
    add_request(warehouse, "r3", sim.user("carl"), "leads")
    checked = subprocess.run([CLI, "check"], capture_output=True, text=True, env=env, timeout=120)
    calls = len(sim.simulator.request_log)
    refused = subprocess.run([CLI, "provision"], capture_output=True, text=True, env=env, timeout=120)
    problem = f"BITBUCKET_SIGNING_KEY {signer.private_key} can be read by others (mode 644): chmod 600 it"
    assert f"signing: PROBLEM: {problem}" in checked.stdout
    assert refused.returncode == 1 and problem in refused.stderr and "Traceback" not in refused.stderr
    assert len(sim.simulator.request_log) == calls


def test_cli_import(tmp_path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(HEADER + "r1,tiny-co,leads,557058:abc,add,ana@x,olga@x,2026-11-20T09:00:00+00:00,,ok\n")
    env = {**os.environ, "DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    ok = subprocess.run(
        [CLI, "requests", "import", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert ok.returncode == 0 and "imported 1 request(s)" in ok.stdout
    again = subprocess.run(
        [CLI, "requests", "import", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert again.returncode == 1 and "request_id: 'r1' already exists" in again.stderr


def test_import_checks_approvers_and_every_surface_says_when_no_policy_is_set(
    policy, warehouse, tmp_path
) -> None:
    sim, _, path = policy
    requests = tmp_path / "requests.csv"
    requests.write_text(
        "request_id,workspace_slug,group_slug,user_id,action,requested_by,approved_by,approved_at\n"
        f"x1,tiny-co,leads,{sim.user('finn').uuid},add,lead@tiny.example,mallory@evil.example,2026-11-27T08:00:00Z\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "DUCKDB_PATH": warehouse,
        "BITBUCKET_APPROVER_POLICY": path,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
    }
    refused = subprocess.run(
        [CLI, "requests", "import", str(requests)], capture_output=True, text=True, env=env, timeout=120
    )
    assert (
        refused.returncode == 1
        and "line 2: approved_by: 'mallory@evil.example' may not approve" in refused.stderr
    )
    env.pop("BITBUCKET_APPROVER_POLICY")
    checked = subprocess.run([CLI, "check"], capture_output=True, text=True, env=env, timeout=120)
    provisioned = subprocess.run(
        [CLI, "provision", "--dry-run"], capture_output=True, text=True, env=env, timeout=120
    )
    for done in (checked, provisioned):
        assert "approver policy: NONE SET (BITBUCKET_APPROVER_POLICY)" in done.stdout, done.stderr[-1500:]


def verify_cli(db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DUCKDB_PATH": db}
    return subprocess.run(
        [CLI, "provision", "--verify-log"], capture_output=True, text=True, env=env, timeout=120
    )


def test_an_intact_trail_verifies_and_carries_the_approval_reference(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads", approval_ref="SEC-1234")
    add_request(warehouse, "r2", sim.user("lena"), "developers", action="remove")
    provision(sim, warehouse, dry_run=True)
    provision(sim, warehouse)
    with duckdb.connect(warehouse, read_only=True) as con:
        result = verify_log(con)
        rows = con.execute(
            "select seq, request_id, outcome, approval_ref from provisioning.provisioning_log order by seq"
        ).fetchall()
    assert rows == [
        (1, "r1", "planned", "SEC-1234"),
        (2, "r2", "planned", None),
        (3, "r1", "applied", "SEC-1234"),
        (4, "r2", "applied", None),
    ]
    assert result.intact and result.rows == 4
    out = verify_cli(warehouse)
    assert (
        out.returncode == 0
        and out.stdout.splitlines()[0] == f"provisioning log intact: 4 rows, head {result.head}"
    )
    # Unsigned, and no run recorded in a Dagster instance: the output says what the verdict rests on.
    assert f"  note: the provisioning log is {UNSIGNED}" in out.stdout.splitlines()


def test_an_altered_row_is_named_and_a_cut_tail_shows_against_the_recorded_head(make_sim, warehouse) -> None:
    sim = make_sim()
    for i, who in enumerate(("finn", "zoe", "carl")):
        add_request(warehouse, f"r{i}", sim.user(who), "leads")
    recorded_head = provision(sim, warehouse).head  # also in the run's Dagster metadata and the CLI output
    with duckdb.connect(warehouse) as con:
        ids = [
            r[0]
            for r in con.execute("select log_id from provisioning.provisioning_log order by seq").fetchall()
        ]
        # Someone rewrites who approved the first change, and erases the last one.
        con.execute("update provisioning.provisioning_log set approved_by = 'ceo@tiny.example' where seq = 1")
        con.execute("delete from provisioning.provisioning_log where seq = 3")
    out = verify_cli(warehouse)
    assert out.returncode == 1 and "provisioning log ALTERED: 2 problem(s)" in out.stdout
    assert f"row 1 (log_id {ids[0]}, request r0): its fields were changed after it was written" in out.stdout
    # Even unsigned, the cut shows: the request the erased row applied is applied without its row.
    assert "request r2 is applied, but the log holds no row that made it so" in out.stdout
    # The chain up to the cut is consistent, but its head is no longer the one recorded after the run.
    with duckdb.connect(warehouse, read_only=True) as con:
        assert verify_log(con).head != recorded_head
