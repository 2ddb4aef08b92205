"""A workspace's effective list goes on beside the next workspaces' extraction (extract.py,
`_EffectiveLists`)."""

from __future__ import annotations

import threading

import duckdb

from bitbucket_assets.client import BitbucketApi, BitbucketClient, Credentials
from bitbucket_assets.extraction import sync
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_API_TOKEN


class _HeldEffectiveList(BitbucketApi):
    """tiny-co's effective list, held after its first page until tiny-labs' repositories are being read."""

    second_workspace = threading.Event()
    waits: list[bool] = []

    def effective_permission_pages(self, slug, resume_from=None):
        for number, page in enumerate(super().effective_permission_pages(slug, resume_from)):
            if slug == "tiny-co" and number == 1:
                # A sync that waited for this list before the next workspace would hold here until the
                # timeout.
                self.waits.append(self.second_workspace.wait(timeout=60))
            yield page

    def repository_pages(self, slug, resume_from=None):
        if slug == "tiny-labs":
            self.second_workspace.set()
        yield from super().repository_pages(slug, resume_from)


def test_the_next_workspace_is_read_while_an_effective_list_is_still_being_fetched(
    make_sim, tmp_path, monkeypatch
):
    sim = make_sim()
    org = sim.org
    for repository in org.workspaces["tiny-co"].repositories.values():
        repository.group_grants["everyone"] = "read"  # 100 members on each of 5 repositories: 6 pages
    org.touch()
    monkeypatch.setattr(sync, "BitbucketApi", _HeldEffectiveList)
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        result = run_sync(client, con, ExtractionOptions())
        written = dict(
            con.execute(
                "select workspace_slug, count(*) from raw.effective_repository_permissions where sync_id = ? "
                "group by 1",
                [result.sync_id],
            ).fetchall()
        )
        pairs = dict(
            con.execute(
                "select workspace_slug, effective_pairs from raw.workspaces where sync_id = ?",
                [result.sync_id],
            ).fetchall()
        )
    assert _HeldEffectiveList.waits == [True]  # released by tiny-labs' repositories, not by the timeout
    expected = {
        ws.slug: sum(len(ws.effective_repository_permissions(repo)) for repo in ws.repositories.values())
        for ws in org.workspaces.values()
    }
    assert written == expected and expected["tiny-co"] > 500  # every page, each once
    assert pairs == expected  # each workspace's size recorded once its own list was in
