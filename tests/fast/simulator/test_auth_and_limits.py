"""Authentication modes, scopes, removed endpoints, the rate limit and the request log."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests

from bitbucket_simulator import (
    SIM_ACCESS_TOKEN,
    SIM_APP_PASSWORD,
    SIM_OAUTH_CLIENT_ID,
    SIM_OAUTH_CLIENT_SECRET,
    RateLimit,
)
from bitbucket_simulator.app import REMOVED_PATHS


def test_api_token_identifies_the_user(tiny_sim) -> None:
    me = tiny_sim.get("/2.0/user").json()
    assert me["display_name"] == "Access Sync Bot" and me["account_status"] == "active"


def test_wrong_token_is_401_with_www_authenticate(tiny_sim) -> None:
    response = requests.get(tiny_sim.url + "/2.0/user", auth=(tiny_sim.email, "wrong"), timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "wrong" not in response.text


def test_app_passwords_are_refused_with_the_removal_date(tiny_sim) -> None:
    response = requests.get(tiny_sim.url + "/2.0/user", auth=("svc", SIM_APP_PASSWORD), timeout=10)
    assert response.status_code == 401
    assert "2026-07-28" in response.json()["error"]["message"]


def test_anonymous_gets_401_on_the_api_and_404_on_private_repositories(tiny_sim) -> None:
    assert requests.get(tiny_sim.url + "/2.0/user", timeout=10).status_code == 401
    assert requests.get(tiny_sim.url + "/2.0/repositories/tiny-co/ledger", timeout=10).status_code == 404
    public = requests.get(tiny_sim.url + "/2.0/repositories/tiny-co/public-docs", timeout=10)
    assert public.status_code == 200 and public.json()["is_private"] is False


def test_missing_scope_lists_required_and_granted(make_sim) -> None:
    sim = make_sim()
    granted = {"read:workspace:bitbucket", "read:repository:bitbucket"}
    sim.simulator.credentials.add_api_token("ro@tiny.example", "ro-token", sim.org.operator_uuid, granted)
    auth = ("ro@tiny.example", "ro-token")
    assert requests.get(sim.url + "/2.0/repositories/tiny-co", auth=auth, timeout=10).status_code == 200
    response = requests.get(sim.url + "/1.0/groups/tiny-co", auth=auth, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"]["detail"] == {
        "required": ["read:permission:bitbucket"],
        "granted": sorted(granted),
    }
    put = requests.put(
        f"{sim.url}/1.0/groups/tiny-co/leads/members/{quote(sim.user('ana').uuid)}",
        auth=auth,
        json={},
        timeout=10,
    )
    assert put.status_code == 403
    assert "write:permission:bitbucket" in put.json()["error"]["detail"]["required"]


def test_access_token_reads_repositories_but_not_permissions(tiny_sim) -> None:
    headers = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}"}
    repos = requests.get(tiny_sim.url + "/2.0/repositories/tiny-co?pagelen=100", headers=headers, timeout=10)
    assert repos.status_code == 200 and len(repos.json()["values"]) == 5
    for path in (
        "/2.0/repositories/tiny-co/ledger/permissions-config/users",
        "/2.0/workspaces/tiny-co/projects/PAY/permissions-config/groups",
        "/2.0/workspaces/tiny-co/permissions/repositories",
        "/1.0/groups/tiny-co",
    ):
        response = requests.get(tiny_sim.url + path, headers=headers, timeout=10)
        assert response.status_code == 403, path
        assert "Access tokens cannot" in response.json()["error"]["message"]
    # It belongs to one workspace only.
    assert (
        requests.get(tiny_sim.url + "/2.0/repositories/tiny-labs", headers=headers, timeout=10).status_code
        == 404
    )


def test_oauth_client_credentials_and_expiry(make_sim) -> None:
    sim = make_sim()
    sim.simulator.credentials.oauth_token_lifetime = 0.5
    bad = requests.post(
        sim.url + "/site/oauth2/access_token",
        auth=(SIM_OAUTH_CLIENT_ID, "nope"),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert bad.status_code == 400
    grant = requests.post(
        sim.url + "/site/oauth2/access_token",
        auth=(SIM_OAUTH_CLIENT_ID, SIM_OAUTH_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=10,
    ).json()
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 0
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    me = requests.get(sim.url + "/2.0/user", headers=headers, timeout=10)
    assert me.status_code == 200 and me.json()["display_name"] == "Access Sync Bot"
    # OAuth may read permissions but never change them.
    ben = quote(sim.user("ben").uuid)
    put = requests.put(
        f"{sim.url}/2.0/repositories/tiny-co/ledger/permissions-config/users/{ben}",
        headers=headers,
        json={"permission": "read"},
        timeout=10,
    )
    assert put.status_code == 403
    time.sleep(0.6)
    expired = requests.get(sim.url + "/2.0/user", headers=headers, timeout=10)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_roles_gate_admin_endpoints(make_sim) -> None:
    sim = make_sim()
    ben = sim.user("ben")
    sim.simulator.credentials.add_api_token(ben.email, "ben-token", ben.uuid)
    auth = (ben.email, "ben-token")

    def status(path: str) -> int:
        return requests.get(sim.url + path, auth=auth, timeout=10).status_code

    assert status("/2.0/workspaces/tiny-co/permissions/repositories") == 403  # not an owner
    assert status("/1.0/groups/tiny-co") == 403
    assert status("/2.0/repositories/tiny-co/ledger/permissions-config/users") == 200  # admin via on-call
    assert status("/2.0/repositories/tiny-co/runbooks/permissions-config/users") == 403  # write only
    assert status("/2.0/repositories/tiny-co/orphan-repo") == 404  # private and invisible to ben
    listed = requests.get(sim.url + "/2.0/repositories/tiny-co?pagelen=100", auth=auth, timeout=10).json()
    assert {v["slug"] for v in listed["values"]} == {"payments-api", "ledger", "runbooks", "public-docs"}


@pytest.mark.parametrize("path", REMOVED_PATHS)
def test_removed_endpoints_answer_410_change_2770(tiny_sim, path: str) -> None:
    response = tiny_sim.get(path)
    assert response.status_code == 410
    assert response.json()["error"]["message"].startswith("CHANGE-2770")


def test_removed_endpoints_can_answer_404(make_sim) -> None:
    sim = make_sim(removed_status=404)
    assert sim.get("/2.0/user/permissions/repositories").status_code == 404


def test_rolling_window_rate_limit(make_sim) -> None:
    sim = make_sim(rate_limit=RateLimit(limit=50, window_seconds=2))
    statuses = [sim.get("/2.0/repositories/tiny-co").status_code for _ in range(55)]
    assert statuses[:50] == [200] * 50 and statuses[50:] == [429] * 5
    limited = sim.get("/2.0/repositories/tiny-co")
    assert limited.headers["content-type"].startswith("text/plain")
    assert limited.text == "Rate limit for this resource has been exceeded"
    assert "Retry-After" not in limited.headers
    # Other resource groups and other credentials have their own buckets.
    assert sim.get("/2.0/workspaces/tiny-co").status_code == 200
    anonymous = requests.get(sim.url + "/2.0/repositories/tiny-co/public-docs", timeout=10)
    assert anonymous.status_code == 200
    time.sleep(2.05)
    assert sim.get("/2.0/repositories/tiny-co").status_code == 200


def test_rate_limit_can_send_retry_after(make_sim) -> None:
    sim = make_sim(rate_limit=RateLimit(limit=2, window_seconds=30, retry_after=True))
    responses = [sim.get("/2.0/user") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert 1 <= int(responses[-1].headers["Retry-After"]) <= 30


def test_request_log_counts_calls_without_secrets(make_sim) -> None:
    sim = make_sim()
    sim.get("/2.0/user")
    sim.get("/2.0/repositories/tiny-co?pagelen=2")
    requests.get(sim.url + "/2.0/user", auth=("svc", SIM_APP_PASSWORD), timeout=10)
    log = requests.get(sim.url + "/_sim/requests", timeout=10).json()
    assert [(r["method"], r["path"], r["status"], r["credential"]) for r in log] == [
        ("GET", "/2.0/user", 200, "api_token"),
        ("GET", "/2.0/repositories/tiny-co", 200, "api_token"),
        ("GET", "/2.0/user", 401, ""),
    ]
    assert log[1]["query"] == "pagelen=2"
    assert SIM_APP_PASSWORD not in str(log) and "ATATT" not in str(log)
    assert len(sim.simulator.calls(prefix="/2.0/repositories")) == 1
