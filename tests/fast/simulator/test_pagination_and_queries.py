"""Pagination boundaries, identifiers and the BBQL subset, over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlparse

import pytest


def follow(sim, path: str) -> tuple[list[dict], list[dict]]:
    values, pages, url = [], [], sim.url + path
    while url:
        body = sim.session.get(url, timeout=10).json()
        pages.append(body)
        values += body["values"]
        url = body.get("next")
    return values, pages


def test_exactly_one_full_page_has_no_next(tiny_sim) -> None:
    body = tiny_sim.get("/2.0/workspaces/tiny-co/members?pagelen=100").json()
    assert len(body["values"]) == 100
    assert "next" not in body
    assert body["size"] == 100


def test_following_next_yields_every_item_once(tiny_sim) -> None:
    values, pages = follow(tiny_sim, "/2.0/workspaces/tiny-co/members?pagelen=30")
    assert [len(p["values"]) for p in pages] == [30, 30, 30, 10]
    uuids = [v["user"]["uuid"] for v in values]
    assert len(uuids) == len(set(uuids)) == 100
    assert "next" not in pages[-1] and "previous" in pages[-1]


def test_next_is_opaque(tiny_sim) -> None:
    body = tiny_sim.get("/2.0/workspaces/tiny-co/members?pagelen=10").json()
    page = parse_qs(urlparse(body["next"]).query)["page"][0]
    assert not page.isdigit()
    assert parse_qs(urlparse(body["next"]).query)["pagelen"] == ["10"]


@pytest.mark.parametrize("query", ["pagelen=101", "pagelen=0", "pagelen=ten", "page=0", "page=garbage!"])
def test_bad_paging_is_400(tiny_sim, query: str) -> None:
    response = tiny_sim.get(f"/2.0/workspaces/tiny-co/members?{query}")
    assert response.status_code == 400
    assert response.json()["type"] == "error"


def test_integer_pages_still_work(tiny_sim) -> None:
    second = tiny_sim.get("/2.0/workspaces/tiny-co/members?pagelen=40&page=2").json()
    assert second["page"] == 2 and len(second["values"]) == 40


def test_size_and_page_are_optional_on_permission_lists(tiny_sim) -> None:
    body = tiny_sim.get("/2.0/repositories/tiny-co/payments-api/permissions-config/users").json()
    assert "size" not in body and "page" not in body
    assert {(v["user"]["type"], v["user"]["display_name"]) for v in body["values"]} == {
        ("user", "Ana Ruiz"),
        ("user", "Dev Only-Direct"),
        ("user", "Carl Contractor"),
        ("app_user", "Deploy token"),  # an access token's bot user holds a grant too
    }


def test_workspace_and_repository_by_uuid_and_slug(tiny_sim) -> None:
    ws = tiny_sim.org.workspaces["tiny-co"]
    repo = ws.repositories["payments-api"]
    by_slug = tiny_sim.get("/2.0/repositories/tiny-co/payments-api").json()
    by_uuid = tiny_sim.get(f"/2.0/repositories/{quote(ws.uuid)}/{quote(repo.uuid)}").json()
    assert by_slug == by_uuid
    assert by_slug["uuid"] == repo.uuid and by_slug["workspace"]["slug"] == "tiny-co"


def test_users_by_uuid_and_account_id(tiny_sim) -> None:
    ana = tiny_sim.user("ana")
    a = tiny_sim.get(f"/2.0/users/{quote(ana.uuid)}").json()
    b = tiny_sim.get(f"/2.0/users/{ana.account_id}").json()
    assert a == b and a["display_name"] == "Ana Ruiz"


def test_v1_groups_take_the_slug_not_the_uuid(tiny_sim) -> None:
    ws = tiny_sim.org.workspaces["tiny-co"]
    assert tiny_sim.get(f"/1.0/groups/{quote(ws.uuid)}").status_code == 403
    assert tiny_sim.get("/1.0/groups/tiny-co").status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('project.key="PAY"', {"payments-api", "ledger"}),
        ('project.key IN ("OPS","ORPH")', {"runbooks", "orphan-repo", "public-docs"}),
        ('project.key="ORPH" AND is_private=false', {"public-docs"}),
        ('slug="ledger" OR slug="runbooks"', {"ledger", "runbooks"}),
        ('name~"RUN"', {"runbooks"}),
        ('project.key NOT IN ("PAY","OPS")', {"orphan-repo", "public-docs"}),
        ('(slug!="ledger") AND project.key="PAY"', {"payments-api"}),
    ],
)
def test_bbql_on_repositories(tiny_sim, query: str, expected: set[str]) -> None:
    values, _ = follow(tiny_sim, f"/2.0/repositories/tiny-co?pagelen=100&q={quote(query)}")
    assert {v["slug"] for v in values} == expected


def test_bbql_permission_ordering_and_owner_filter(tiny_sim) -> None:
    owners = tiny_sim.get('/2.0/workspaces/tiny-co/permissions?q=permission="owner"').json()["values"]
    assert {o["user"]["display_name"] for o in owners} == {"Access Sync Bot", "Olga Owner"}
    above_read, _ = follow(
        tiny_sim, "/2.0/workspaces/tiny-co/permissions/repositories/runbooks?" + 'q=permission>"read"'
    )
    assert {v["permission"] for v in above_read} == {"write", "admin"}


def test_sort_descending(tiny_sim) -> None:
    values, _ = follow(tiny_sim, "/2.0/repositories/tiny-co?sort=-slug&pagelen=100")
    slugs = [v["slug"] for v in values]
    assert slugs == sorted(slugs, reverse=True)


@pytest.mark.parametrize(
    "path",
    [
        '/2.0/repositories/tiny-co?q=owner.nickname="x"',
        '/2.0/repositories/tiny-co?q=slug=="x"',
        '/2.0/repositories/tiny-co?q=(slug="x"',
        "/2.0/repositories/tiny-co?sort=colour",
        '/2.0/repositories/tiny-co/ledger/permissions-config/users?q=permission="admin"',
    ],
)
def test_unknown_queries_are_400(tiny_sim, path: str) -> None:
    response = tiny_sim.get(path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"]


def test_fields_can_drop_links(tiny_sim) -> None:
    body = tiny_sim.get("/2.0/repositories/tiny-co?fields=-values.links,-values.owner").json()
    assert body["values"] and all("links" not in v and "owner" not in v for v in body["values"])
