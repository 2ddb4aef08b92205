"""Just-in-time access ends when the last approval of the membership ends: the latest decision wins."""

from __future__ import annotations

from datetime import timedelta

from tests.support.provisioning import NOW, add_request, expire, provision, statuses, writes


def in_leads(sim, nickname: str) -> bool:
    return sim.user(nickname).uuid in sim.org.workspaces["tiny-co"].groups["leads"].members


def test_a_later_removal_ends_an_earlier_permanent_add(make_sim, warehouse) -> None:
    """A permanent add, then an applied remove of it, then a just-in-time add: at expiry the old add (still
    `applied`) no longer covers the membership, and it is removed."""
    sim = make_sim()
    finn = sim.user("finn")
    add_request(warehouse, "permanent", finn, "leads", approved_at=NOW - timedelta(hours=3))
    provision(sim, warehouse)
    add_request(warehouse, "removal", finn, "leads", action="remove", approved_at=NOW - timedelta(hours=2))
    provision(sim, warehouse)
    add_request(
        warehouse,
        "jit",
        finn,
        "leads",
        approved_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(hours=1),
    )
    provision(sim, warehouse)
    assert {k: v[0] for k, v in statuses(warehouse).items()} == dict.fromkeys(
        ("permanent", "removal", "jit"), "applied"
    )
    expire(sim, warehouse, now=NOW + timedelta(hours=2))
    assert statuses(warehouse)["jit"] == ("expired", None) and not in_leads(sim, "finn")
    assert [w.method for w in writes(sim)] == ["PUT", "DELETE", "PUT", "DELETE"]


def test_a_second_just_in_time_request_extends_the_membership_and_then_it_ends(make_sim, warehouse) -> None:
    """The extension finds the user in the group (`no_change`); at the first expiry the membership is kept for
    it, and at its own expiry the membership ends."""
    sim = make_sim()
    zoe = sim.user("zoe")
    add_request(
        warehouse,
        "first",
        zoe,
        "leads",
        approved_at=NOW - timedelta(hours=2),
        expires_at=NOW + timedelta(hours=1),
    )
    provision(sim, warehouse)
    add_request(warehouse, "extension", zoe.account_id, "leads", expires_at=NOW + timedelta(days=2))
    provision(sim, warehouse)
    assert statuses(warehouse)["extension"][0] == "no_change"
    expire(sim, warehouse, now=NOW + timedelta(hours=2))
    assert statuses(warehouse)["first"] == (
        "expired",
        "expired; access kept because request extension still covers it",
    )
    assert in_leads(sim, "zoe")
    expire(sim, warehouse, now=NOW + timedelta(days=3))
    assert statuses(warehouse)["extension"] == ("expired", None) and not in_leads(sim, "zoe")
    assert [w.method for w in writes(sim)] == ["PUT", "DELETE"]


def test_a_later_permanent_add_by_uuid_covers_a_grant_made_by_account_id(make_sim, warehouse) -> None:
    """Users are one person whether a request names their `{uuid}` or their account id."""
    sim = make_sim()
    carl = sim.user("carl")
    add_request(
        warehouse,
        "jit",
        carl.account_id,
        "leads",
        approved_at=NOW - timedelta(hours=2),
        expires_at=NOW + timedelta(hours=1),
    )
    provision(sim, warehouse)
    add_request(warehouse, "standing", carl.uuid, "leads")
    provision(sim, warehouse)
    expire(sim, warehouse, now=NOW + timedelta(hours=2))
    assert statuses(warehouse)["jit"] == (
        "expired",
        "expired; access kept because request standing still covers it",
    )
    assert in_leads(sim, "carl") and [w.method for w in writes(sim)] == ["PUT"]


def test_a_membership_that_existed_before_its_request_is_kept_at_expiry(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "jit", sim.user("cleo"), "leads", expires_at=NOW + timedelta(hours=1))
    provision(sim, warehouse)
    assert statuses(warehouse)["jit"][0] == "no_change"
    expire(sim, warehouse, now=NOW + timedelta(hours=2))
    assert statuses(warehouse)["jit"] == (
        "expired",
        "expired; nothing removed: the membership was not made by this system (it existed before the "
        "request)",
    )
    assert in_leads(sim, "cleo") and writes(sim) == []
