"""Signed approvals and reviews through the command a user runs: an approver signs in two commands, then
import, plan, apply and expiry; a reviewer signs, and the revocation is applied; a policy file others can
write, or an empty policy variable, stops every command."""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import UTC, datetime, timedelta

import duckdb

from bitbucket_simulator import SIM_API_TOKEN
from tests.support import CLI
from tests.support.provisioning import statuses, writes
from tests.support.signing import keypair, signed_policy


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def environment(sim, warehouse: str, policy: str) -> dict:
    return {
        **os.environ,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "BITBUCKET_REQUESTS_PER_HOUR": "1000000",
        "DUCKDB_PATH": warehouse,
        "BITBUCKET_APPROVER_POLICY": policy,
        "BITBUCKET_PROTECTED_GROUPS": "leads",
    }


def test_an_approver_signs_in_two_commands_and_the_change_is_applied_then_expires(
    make_sim, warehouse, tmp_path
) -> None:
    sim = make_sim()
    key = keypair(tmp_path, "olga")
    _, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": key})
    env = environment(sim, warehouse, policy)
    finn, zoe = sim.user("finn").uuid, sim.user("zoe").account_id
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    path = tmp_path / "requests.csv"
    path.write_text(
        "request_id,workspace_slug,group_slug,user_id,action,requested_by,expires_at,reason,allow_protected\n"
        f"jit,tiny-co,leads,{finn},add,ana@tiny.example,{until},on call,true\n"
        f"dev,tiny-co,developers,{zoe},add,ana@tiny.example,,joins the team,false\n",
        encoding="utf-8",
    )
    # 1. The approver reads what they approve and signs it (their name comes from the policy's keys).
    signed = cli(env, "requests", "sign", str(path), "--key", str(key))
    assert signed.returncode == 0, signed.stderr
    assert "-- request jit, as you approve it:" in signed.stdout and 'group_slug: "leads"' in signed.stdout
    assert "signed 2 request(s) as olga@tiny.example" in signed.stdout
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["approved_by"] for r in rows] == ["olga@tiny.example"] * 2
    assert all(r["approval_signature"].startswith("-----BEGIN SSH SIGNATURE-----") for r in rows)
    # 2. The file is imported; then the plan, the change and the expiry.
    imported = cli(env, "requests", "import", str(path))
    assert imported.returncode == 0 and "imported 2 request(s)" in imported.stdout, imported.stderr
    dry = cli(env, "provision", "--dry-run")
    # People, groups and workspaces by name; zoe by the account id the request gives (the snapshot names her).
    assert "jit: add Finn No-Access (finn) to Leads in Tiny Co -> planned" in dry.stdout, dry.stdout
    assert (
        'dev: add Zoë O\'Brien "Zed" Łukasiewicz (zoe) to Developers in Tiny Co -> planned' in dry.stdout
        and writes(sim) == []
    )
    assert "signatures required for protected groups; 1 signer key(s)" in dry.stdout
    real = cli(env, "provision")
    assert (
        real.returncode == 0
        and "jit: add Finn No-Access (finn) to Leads in Tiny Co -> applied" in real.stdout
        and 'dev: add Zoë O\'Brien "Zed" Łukasiewicz (zoe) to Developers in Tiny Co -> applied' in real.stdout
    )
    with duckdb.connect(warehouse) as con:  # time passes
        con.execute(
            "update provisioning.access_requests set expires_at = ? where request_id = 'jit'",
            [datetime.now(UTC) - timedelta(minutes=1)],
        )
    expired = cli(env, "provision", "--expire")
    assert (
        expired.returncode == 0
        and "jit: expire Finn No-Access (finn)'s membership of Leads in Tiny Co -> expired" in expired.stdout
    ), expired.stderr
    assert sim.user("finn").uuid not in sim.org.workspaces["tiny-co"].groups["leads"].members
    assert statuses(warehouse)["dev"][0] == "applied"


def test_a_signed_review_revokes_through_the_commands(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    key = keypair(tmp_path, "olga")
    _, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": key})
    env = environment(sim, warehouse, policy)
    out = tmp_path / "review.xlsx"
    exported = cli(
        env, "review", "export", "--as-of", "2099-01-01", "--workspace", "tiny-co", "--out", str(out)
    )
    assert exported.returncode == 0 and "due " in exported.stdout, exported.stderr
    from openpyxl import load_workbook

    book = load_workbook(out)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        values = dict(zip(header, [c.value for c in row], strict=True))
        if values["user_display_name"] == "Ben Okafor" and values["resource_key"] == "payments-api":
            row[header.index("decision")].value = "revoke"
            # What else the revoke takes away: Ben reaches project PAY only through `developers` too.
            assert values["revoke_also_removes"] == "project PAY (read); group developers (membership)"
            line = row[0].row
        elif values["user_display_name"] == "Ana Ruiz":
            row[header.index("decision")].value = "keep"
    book.save(out)
    assert cli(env, "review", "sign", str(out), "--key", str(key)).returncode == 0
    imported = cli(env, "review", "import", str(out))
    assert imported.returncode == 0 and imported.stdout.startswith("1 remove request(s) created"), (
        imported.stderr
    )
    assert "signed by olga@tiny.example" in imported.stdout
    impact = (
        f"  removal: line {line}: Ben Okafor (ben) leaves Developers in Tiny Co: also loses project PAY "
        "(read); repository payments-api (write)"
    )
    assert impact in imported.stdout.splitlines(), imported.stdout
    plan = cli(env, "provision", "--dry-run")
    [line] = [
        x for x in plan.stdout.splitlines() if "remove Ben Okafor (ben) from Developers in Tiny Co" in x
    ]
    assert "-> planned" in line
    assert line.endswith("; also loses project PAY (read); repository payments-api (write)"), line
    applied = cli(env, "provision")
    assert applied.returncode == 0 and "-> applied" in applied.stdout, applied.stdout + applied.stderr
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members


def test_an_unguarded_or_empty_policy_stops_every_command(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    _, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": keypair(tmp_path, "olga")})
    os.chmod(policy, 0o666)
    env = environment(sim, warehouse, policy)
    for args in (("provision", "--dry-run"), ("check",), ("requests", "import", policy)):
        done = cli(env, *args)
        assert done.returncode == 1 and "can be written by others (mode 666): chmod go-w" in done.stderr, args
    done = cli({**env, "BITBUCKET_APPROVER_POLICY": ""}, "provision", "--dry-run")
    assert done.returncode == 1 and "BITBUCKET_APPROVER_POLICY is set but empty" in done.stderr
