"""Credentials reach only the configured origin. A hostile API (a `Listener` on loopback) sends `next` links,
redirects and token answers that point elsewhere; a second listener, the attacker's host, records whatever
reaches it, and must receive nothing. Lists end at a page cap and never follow one link twice; JSON of any
depth is a malformed-response error naming the endpoint."""

from __future__ import annotations

import base64

import pytest

from bitbucket_assets.client import (
    AuthenticationError,
    BitbucketClient,
    BitbucketError,
    Credentials,
    ForeignOriginError,
    MalformedResponseError,
    PermissionDeniedError,
)
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.client.json_body import MAX_JSON_DEPTH
from tests.support.listener import Answer, Listener, Received

EMAIL, TOKEN = "svc@example.com", "ATATT3xHostileTestToken0001"
CLIENT_ID, CLIENT_SECRET = "consumer-id", "OAuthConsumerSecret0001"
BEARER = "oauth-access-token-0001"
LIST = "/2.0/repositories/acme"
TOKEN_PATH = "/site/oauth2/access_token"
FAST = {"requests_per_hour": 1e7, "backoff_base": 0.001, "backoff_max": 0.002, "max_retries": 2}
DEEP = b"[" * 200_000 + b"]" * 200_000


def credentials(kind: str, api: Listener) -> Credentials:
    return {
        "api_token": Credentials.api_token(EMAIL, TOKEN),
        "access_token": Credentials.access_token(TOKEN),
        "app_password": Credentials.app_password("svc", TOKEN),
        "oauth": Credentials.oauth(CLIENT_ID, CLIENT_SECRET, api.url + TOKEN_PATH),
        "admin_api_key": Credentials.org_api_key(TOKEN),
    }[kind]


def secrets_in(listener: Listener) -> list[str]:
    """Every secret of these tests that reached `listener`, in any header or body (Basic decoded)."""
    seen = []
    for request in listener.received:
        text = " ".join(request.headers.values()) + request.body.decode(errors="replace")
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            text += " " + base64.b64decode(auth[6:]).decode(errors="replace")
        seen += [s for s in (TOKEN, CLIENT_SECRET, BEARER) if s in text]
    return seen


def api_answering(pages: dict[str, Answer]):
    """A hostile API: the token endpoint grants `BEARER`; a listed path answers its page; the rest 404."""

    def answer(request: Received) -> Answer:
        if request.path == TOKEN_PATH:
            return Answer(body={"access_token": BEARER, "expires_in": 3600})
        return pages.get(request.target, pages.get(request.path, Answer(404, {"error": {"message": "no"}})))

    return answer


def page(next_url: str | None = None, **extra) -> Answer:
    return Answer(body={"values": [{"slug": "x"}], **({"next": next_url} if next_url else {}), **extra})


ELSEWHERE = {
    "another port": "{elsewhere}" + LIST + "?page=2",
    "localhost for 127.0.0.1": "http://localhost:{api_port}" + LIST + "?page=2",
    "https for http": "https://127.0.0.1:{api_port}" + LIST + "?page=2",
    "user info before the host": "http://127.0.0.1:{api_port}@127.0.0.1:{elsewhere_port}" + LIST,
    "no scheme": "//127.0.0.1:{elsewhere_port}" + LIST + "?page=2",
    "another scheme": "ftp://127.0.0.1:{elsewhere_port}" + LIST,
    "a trailing dot on the host": "http://127.0.0.1.:{api_port}" + LIST + "?page=2",
}


@pytest.mark.parametrize("kind", ["api_token", "access_token", "app_password", "oauth", "admin_api_key"])
@pytest.mark.parametrize("variant", list(ELSEWHERE))
def test_a_next_link_to_another_origin_is_refused_and_nothing_reaches_it(kind: str, variant: str) -> None:
    with Listener() as elsewhere, Listener() as api:
        link = ELSEWHERE[variant].format(
            elsewhere=elsewhere.url, elsewhere_port=elsewhere.port, api_port=api.port
        )
        api.answer = api_answering({LIST: page(link, size=250)})
        client = BitbucketClient(credentials(kind, api), api.url, **FAST)
        with pytest.raises(ForeignOriginError) as refused:
            list(client.paginate(LIST))
    message = str(refused.value)
    assert f"not to the configured origin http://127.0.0.1:{api.port}" in message
    assert "the `next` link of page 1" in message and f"[{LIST}]" in message
    assert elsewhere.received == []
    assert [r.path for r in api.received if r.path != TOKEN_PATH] == [LIST]  # the first page only
    assert TOKEN not in message and CLIENT_SECRET not in message


def test_the_refusal_names_where_the_link_pointed(tmp_path) -> None:
    with Listener() as elsewhere, Listener() as api:
        api.answer = api_answering({LIST: page(elsewhere.url + LIST + "?page=2")})
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        with pytest.raises(ForeignOriginError, match=f"points to http://127.0.0.1:{elsewhere.port}, not"):
            list(client.paginate(LIST))
    assert elsewhere.received == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("kind", ["api_token", "access_token", "oauth", "admin_api_key"])
def test_a_redirect_is_never_followed(status: int, kind: str) -> None:
    with Listener() as elsewhere, Listener() as api:
        moved = Answer(status, {}, {"Location": elsewhere.url + "/2.0/user"})
        api.answer = api_answering(
            {"/2.0/user": moved, "/2.0/here": Answer(status, {}, {"Location": "/2.0/x"})}
        )
        client = BitbucketClient(credentials(kind, api), api.url, **FAST)
        with pytest.raises(ForeignOriginError, match=f"HTTP {status} redirects to http://127.0.0.1:"):
            client.get("/2.0/user")
        with pytest.raises(BitbucketError, match=f"HTTP {status} redirects to /2.0/x: redirects are not"):
            client.get("/2.0/here")
    assert elsewhere.received == []
    assert [r.path for r in api.received if r.path != TOKEN_PATH] == ["/2.0/user", "/2.0/here"]


@pytest.mark.parametrize(
    "stored",
    [
        "{elsewhere}" + LIST + "?page=3",
        "http://localhost:{api_port}" + LIST + "?page=3",
        "http://127.0.0.1:{api_port}/2.0/repositories/other-workspace?page=3",
        "not a url",
    ],
)
def test_a_checkpoint_is_checked_before_the_list_resumes(stored: str) -> None:
    with Listener() as elsewhere, Listener() as api:
        api.answer = api_answering({})
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        resume = stored.format(elsewhere=elsewhere.url, api_port=api.port)
        with pytest.raises(BitbucketError, match="the checkpoint to resume from") as refused:
            next(client.pages(LIST, resume_from=resume))
    assert isinstance(refused.value, ForeignOriginError) == ("other-workspace" not in stored)
    assert api.received == [] and elsewhere.received == []  # refused before any request


def test_the_oauth_secret_goes_only_to_the_token_endpoint_and_the_token_only_to_the_api() -> None:
    with Listener() as api:
        api.answer = api_answering({LIST: page()})
        client = BitbucketClient(credentials("oauth", api), api.url, **FAST)
        assert len(list(client.paginate(LIST))) == 1
    token_calls = [r for r in api.received if r.path == TOKEN_PATH]
    list_calls = [r for r in api.received if r.path == LIST]
    assert len(token_calls) == 1 and token_calls[0].headers["authorization"].startswith("Basic ")
    assert [r.headers["authorization"] for r in list_calls] == [f"Bearer {BEARER}"]


def test_a_token_endpoint_that_redirects_gets_nothing_more_and_sends_nothing_on() -> None:
    with Listener() as elsewhere, Listener() as token_host, Listener() as api:
        token_host.answer = lambda request: Answer(307, {}, {"Location": elsewhere.url + TOKEN_PATH})
        creds = Credentials.oauth(CLIENT_ID, CLIENT_SECRET, token_host.url + TOKEN_PATH)
        client = BitbucketClient(creds, api.url, **FAST)
        with pytest.raises(
            AuthenticationError, match=r"redirects \(HTTP 307\) to http://127.0.0.1:.*not followed"
        ):
            client.get("/2.0/user")
    assert elsewhere.received == [] and api.received == []
    assert len(token_host.received) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>login</html>",
        b"[]",
        b'{"access_token": 5}',
        b'{"access_token": "abc\\r\\nX-Injected: 1"}',
        b'{"token": "abc"}',
        DEEP,
    ],
)
def test_a_token_answer_of_another_shape_is_a_malformed_response(body: bytes) -> None:
    with Listener() as token_host, Listener() as api:
        token_host.answer = lambda request: Answer(200, body)
        creds = Credentials.oauth(CLIENT_ID, CLIENT_SECRET, token_host.url + TOKEN_PATH)
        client = BitbucketClient(creds, api.url, **FAST)
        with pytest.raises(
            MalformedResponseError, match=f"without a usable `access_token` \\[{TOKEN_PATH}\\]"
        ):
            client.get("/2.0/user")
    assert api.received == []


def test_a_next_link_to_itself_is_followed_once() -> None:
    with Listener() as api:
        api.answer = api_answering(
            {LIST: page(api.url + LIST + "?page=2"), f"{LIST}?page=2": page(api.url + LIST + "?page=2")}
        )
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        with pytest.raises(
            MalformedResponseError, match="the `next` link of page 2 leads back to a page already"
        ):
            list(client.paginate(LIST))
    assert len(api.received) == 2


def endless(api: Listener, **extra):
    """Every page links to a new one."""

    def answer(request: Received) -> Answer:
        number = int(request.target.partition("page=")[2] or 1)
        return page(f"{api.url}{LIST}?page={number + 1}", **extra)

    return answer


@pytest.mark.parametrize(("size", "pagelen", "cap"), [(250, 100, 13), (2_000, 100, 30), (500, 10, 60)])
def test_a_list_stops_at_the_pages_its_size_needs(size: int, pagelen: int, cap: int) -> None:
    with Listener() as api:
        api.answer = endless(api, size=size, pagelen=pagelen)
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        with pytest.raises(
            MalformedResponseError,
            match=f"did not end after {cap} pages \\(it says it holds {size} entries, {pagelen} a page\\)",
        ):
            list(client.paginate(LIST))
    assert len(api.received) == cap


def test_a_list_without_a_size_stops_at_the_fixed_cap() -> None:
    with Listener() as api:
        api.answer = endless(api)
        client = BitbucketClient(credentials("api_token", api), api.url, max_pages=40, **FAST)
        with pytest.raises(MalformedResponseError, match="after 40 pages \\(it sends no `size`\\)"):
            list(client.paginate(LIST))
    assert len(api.received) == 40


def test_json_of_any_depth_is_a_malformed_response_naming_the_endpoint() -> None:
    just_too_deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    deep_error = b'{"error": {"message": ' + DEEP + b"}}"
    with Listener() as api:
        api.answer = api_answering(
            {
                LIST: Answer(200, DEEP),
                "/2.0/user": Answer(200, just_too_deep),
                "/2.0/workspaces/acme": Answer(403, deep_error),
            }
        )
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        with pytest.raises(
            MalformedResponseError, match=f"nested deeper than {MAX_JSON_DEPTH} levels.*\\[{LIST}"
        ):
            list(client.paginate(LIST))
        with pytest.raises(MalformedResponseError, match=r"nested deeper .*\[/2.0/user\]"):
            client.get("/2.0/user")
        with pytest.raises(PermissionDeniedError, match="HTTP 403"):  # an error body too deep is no message
            client.get("/2.0/workspaces/acme", workspace="acme")
    assert len(api.received) == 3  # not retried: the next answer would be as deep


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"values": [], "next": 7}, "the `next` link of page 1 is not a URL \\(int\\)"),
        ({"values": [], "next": {"href": "x"}}, "is not a URL \\(dict\\)"),
        ({"values": {"a": 1}}, "page 1 has no `values` list"),
        ([], "page 1 has no `values` list"),
    ],
)
def test_a_page_of_another_shape_is_a_malformed_response(body, text: str) -> None:
    with Listener() as api:
        api.answer = api_answering({LIST: Answer(200, body)})
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        with pytest.raises(MalformedResponseError, match=text):
            list(client.paginate(LIST))


def test_a_size_that_is_no_count_is_ignored() -> None:
    with Listener() as api:
        api.answer = api_answering({LIST: page(size=True, pagelen="100")})
        client = BitbucketClient(credentials("api_token", api), api.url, **FAST)
        assert list(client.pages(LIST)) == [([{"slug": "x"}], None, None)]


def test_the_admin_api_stops_at_a_cursor_it_already_followed() -> None:
    with Listener() as api:
        api.answer = lambda request: Answer(body={"data": [{"directoryId": "d1"}], "links": {"next": "same"}})
        admin = AtlassianAdminApi(BitbucketClient(Credentials.org_api_key(TOKEN), api.url, **FAST), "org")
        with pytest.raises(MalformedResponseError, match="cursor of page 2 was already followed"):
            admin.directories()
    assert len(api.received) == 2
    assert secrets_in(api) == [TOKEN, TOKEN]  # the key went to the Admin API's origin, and only there
