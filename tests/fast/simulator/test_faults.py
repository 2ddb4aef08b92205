"""Each injected fault, seen from a real HTTP client."""

from __future__ import annotations

import json
import time

import pytest
import requests

from bitbucket_simulator import Faults


def test_faults_are_off_by_default(tiny_sim) -> None:
    assert not tiny_sim.simulator.faults.active
    assert all(tiny_sim.get("/2.0/workspaces/tiny-co").status_code == 200 for _ in range(20))


def test_server_errors(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, error_rate=1.0))
    response = sim.get("/2.0/user")
    assert response.status_code in (500, 502, 503)
    assert response.json()["type"] == "error"
    assert sim.simulator.request_log[-1].fault == "5xx"


def test_429_bursts_are_plain_text_and_end(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=3, burst_rate=0.2, burst_length=4))
    statuses = [sim.get("/2.0/user").status_code for _ in range(60)]
    assert 429 in statuses and 200 in statuses
    first = statuses.index(429)
    assert statuses[first : first + 4] == [429] * 4  # a burst, not a single refusal
    limited = next(r for r in sim.simulator.request_log if r.status == 429)
    assert limited.fault == "429"


def test_latency_with_jitter(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, latency_ms=80, jitter_ms=10))
    started = time.perf_counter()
    for _ in range(5):
        assert sim.get("/2.0/user").status_code == 200
    assert time.perf_counter() - started >= 5 * 0.070


def test_dropped_connection(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, drop_rate=1.0))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        sim.get("/2.0/repositories/tiny-co?pagelen=100")
    sim.simulator.faults.configure(drop_rate=0)
    assert sim.get("/2.0/user").status_code == 200  # the server itself survived


def test_truncated_json(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, truncate_rate=1.0))
    response = sim.get("/2.0/repositories/tiny-co")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_malformed_body(make_sim) -> None:
    sim = make_sim(faults=Faults(seed=1, malformed_rate=1.0))
    response = sim.get("/2.0/user")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")


def test_faults_are_seeded(make_sim) -> None:
    def run(seed: int) -> list[int]:
        sim = make_sim(faults=Faults(seed=seed, error_rate=0.3, burst_rate=0.1))
        return [sim.get("/2.0/user").status_code for _ in range(40)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_faults_configurable_over_http(make_sim) -> None:
    sim = make_sim()
    assert requests.post(sim.url + "/_sim/faults", json={"error_rate": 1.0}, timeout=10).status_code == 204
    assert sim.get("/2.0/user").status_code >= 500
    assert requests.post(sim.url + "/_sim/faults", json={"colour": 1}, timeout=10).status_code == 400
    requests.post(sim.url + "/_sim/faults", json={"error_rate": 0}, timeout=10)
    assert sim.get("/2.0/user").status_code == 200
