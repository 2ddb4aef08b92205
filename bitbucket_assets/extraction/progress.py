"""Progress of a sync, reported at every checkpoint: a sync of a large organisation runs for hours at
Bitbucket's pace, and whoever watches it (a terminal, Dagster's run log) should see where it is and how long
is left.

An event per committed page says the workspace, the stage (members, projects, repositories, effective), pages
done of expected (from the list's `size`, when Bitbucket sends it), calls and 429s so far, seconds spent
waiting for the pacing budget, and an estimate of the time left in the stage at that budget. Listeners decide
how to show it (`ProgressEvent.line()` is the plain form).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..client import BitbucketClient
from ..client.api import Page

log = logging.getLogger(__name__)
# Every event as a log record (`extra={"progress": event}`): how a process running the sync in-process (the
# CLI running the Dagster job) shows progress without Dagster in between.
EVENTS = logging.getLogger("bitbucket_assets.progress")

PAGE_LENGTH = 100  # what a sync asks for (`pagelen`)
# The rate-limit bucket a stage's calls are paced in.
BUCKET = {
    "projects": "api",
    "repositories": "repositories",
    "effective": "api",
    "members": "api",
    "change_control": "repositories",
}


@dataclass(frozen=True)
class ProgressEvent:
    workspace: str
    stage: str  # members | projects | repositories | effective | change_control
    pages_done: int
    pages_expected: int | None  # None: the list does not say how long it is
    calls: int  # HTTP calls of the whole sync so far
    rate_limited: int  # 429 answers so far
    paced_seconds: float  # wall-clock time the sync spent waiting for the pacing budget so far
    eta_seconds: float | None  # time left in this stage at the pacing budget; None when unknown
    finished: bool = False  # the stage is complete
    stage_calls: int = 0  # HTTP calls of this workspace's stage so far

    def line(self) -> str:
        of = f"/{self.pages_expected}" if self.pages_expected is not None else " (length not given)"
        state = "done" if self.finished else f"page {self.pages_done}{of}"
        eta = "" if self.finished else f", {self.eta()}"
        return (
            f"{self.workspace}: {self.stage} {state}; {self.stage_calls} calls ({self.calls} in the sync), "
            f"{self.rate_limited} rate-limited, {_duration(self.paced_seconds)} paced{eta}"
        )

    def short(self) -> str:
        """The figures for a narrow live display: the stage's calls, 429s if any, pacing, time left."""
        limited = f", {self.rate_limited} 429s" if self.rate_limited else ""
        eta = "" if self.finished else f", {self.eta()}"
        return f"{self.stage_calls} calls{limited}, {_duration(self.paced_seconds)} paced{eta}"

    def eta(self) -> str:
        """The time left in the stage, in words."""
        if self.eta_seconds is None:
            return "time left unknown"
        return f"about {_duration(self.eta_seconds)} left"


# The endpoints of the change-control stage (extraction/change_control.py), under repositories and projects.
CHANGE_CONTROL_SEGMENTS = {
    "branch-restrictions",
    "effective-branching-model",
    "override-settings",
    "deploy-keys",
}


def stage_of(family: str) -> str:
    """Which stage of a sync an endpoint family's calls belong to (`client.endpoint_family`)."""
    parts = family.split("/")  # version, then the endpoint's segments
    if CHANGE_CONTROL_SEGMENTS & set(parts):
        return "change_control"
    if parts[-2:] == ["permissions", "repositories"]:
        return "effective"
    if parts[1:2] in (["repositories"], ["group-privileges"]):
        return "repositories"
    if "projects" in parts:
        return "projects"
    return "members"


Listener = Callable[[ProgressEvent], None]


class SyncProgress:
    """Turns checkpoints into `ProgressEvent`s for `listeners`; a listener that fails never stops the sync."""

    def __init__(self, client: BitbucketClient, listeners: Iterable[Listener] = ()):
        self.client = client
        self.listeners = list(listeners)
        self._pages: dict[tuple[str, str], int] = {}
        self._expected: dict[tuple[str, str], int | None] = {}

    def page(self, workspace: str, stage: str, page: Page, lists_per_entry: int = 0) -> None:
        """A page of `stage` and everything fetched for it was committed; each entry of the list costs
        `lists_per_entry` more calls (its permission lists)."""
        key = (workspace, stage)
        done = self._pages[key] = self._pages.get(key, 0) + 1
        if key not in self._expected:  # the first page of this run says how long the list is
            self._expected[key] = math.ceil(page.size / PAGE_LENGTH) if page.size is not None else None
        expected = self._expected[key]
        if expected is not None and done > expected:  # the list grew while it was read
            expected = self._expected[key] = done
        eta = None
        if expected is not None and page.size is not None:
            entries_left = max(0, page.size - done * PAGE_LENGTH)
            calls_left = (expected - done) + entries_left * lists_per_entry
            eta = calls_left * self.client.buckets[BUCKET.get(stage, "api")].interval
        self._emit(workspace, stage, done, expected, eta, finished=page.next_url is None)

    def batch(self, workspace: str, stage: str, done: int, expected: int, calls_left: int) -> None:
        """A batch of a stage that reads per resource (no pages of its own) was committed; `calls_left` more
        calls finish it."""
        eta = calls_left * self.client.buckets[BUCKET.get(stage, "api")].interval
        self._emit(workspace, stage, done, expected, eta, finished=done >= expected)

    def stage_done(self, workspace: str, stage: str) -> None:
        """A stage without pages of its own (the members and groups of a workspace) was committed."""
        self._emit(workspace, stage, 1, 1, None, finished=True)

    def _emit(
        self,
        workspace: str,
        stage: str,
        done: int,
        expected: int | None,
        eta: float | None,
        *,
        finished: bool,
    ) -> None:
        calls, limited = self.client.stats.snapshot()
        stage_calls = self.client.stats.calls_of(workspace, lambda family: stage_of(family) == stage)
        paced = self.client.pacing.seconds()
        event = ProgressEvent(
            workspace, stage, done, expected, calls, limited, paced, eta, finished, stage_calls
        )
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # showing progress must never cost the snapshot
                log.exception("a progress listener failed")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def to_python_log(event: ProgressEvent) -> None:
    """A listener: the event to `EVENTS` (INFO), for whoever attached a handler there."""
    EVENTS.info(event.line(), extra={"progress": event})
