"""When a resource a sync listed is gone, and when a 404 is a failure (docs/design.md, "Gone only when
Bitbucket says so").

A sync lists a workspace's projects and repositories, then reads lists that belong to each (permission lists
today; any per-resource list tomorrow). On a sync that runs for hours, some of those resources are deleted in
between, and their lists answer 404. Such a resource is left out of the snapshot, as if it had been listed a
moment later, but only when Bitbucket says so about that resource: a read of the resource itself answers 404
too. Everything else fails the sync, naming the endpoint and what it answered:

- a 404 that says no API is hosted at the URL, or whose body is not Bitbucket's error object (the client
  raises `EndpointNotFoundError`, which is not a `NotFoundError`): a proxy, a wrong API root, an API change;
- a list's 404 while the resource itself reads fine (`UnexplainedNotFoundError`): the 404 is not about it.

How a new per-resource list uses this: wrap each read in `read_or_gone(api, resource, read)`; a `Gone`
result means "drop the resource" (`SnapshotWriter.drop_resource`, `SnapshotWriter.note_gone`), any exception
fails the sync as usual. The circuit breaker (`vanished.py`) then guards the total: a sync in which too many
resources vanish is held back instead of published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from ..client import BitbucketApi, BitbucketError, NotFoundError

T = TypeVar("T")
Kind = Literal["repository", "project"]


@dataclass(frozen=True)
class Listed:
    """A resource the sync listed, that lists are read for. Repositories are read by `{uuid}` (which survives
    a rename), projects by key (Bitbucket's project endpoints take only the key)."""

    kind: Kind
    workspace: str
    key: str  # slug or key, as listed
    uuid: str

    @property
    def path_id(self) -> str:
        return self.uuid if self.kind == "repository" else self.key

    def __str__(self) -> str:
        return f"{self.kind} {self.workspace}/{self.key}"


@dataclass(frozen=True)
class Gone:
    """A listed resource Bitbucket now says does not exist: its list and a read of it both answered 404."""

    resource: Listed
    endpoint: str  # the list that answered 404
    confirmed_by: str  # the read of the resource itself that answered 404 too

    @property
    def reason(self) -> str:
        return (
            f"{self.resource.kind} deleted while the sync ran: {self.endpoint} and {self.confirmed_by} "
            "answered 404"
        )


class UnexplainedNotFoundError(BitbucketError):
    """A list answered 404 while the resource it belongs to reads fine: the 404 is not about the resource, so
    nothing is taken as deleted and the sync fails."""


def read_or_gone(api: BitbucketApi, resource: Listed, read: Callable[[], T]) -> T | Gone:
    """`read()`, or `Gone` when it answers 404 and so does the resource itself."""
    try:
        return read()
    except NotFoundError as exc:  # an EndpointNotFoundError is not one: it fails the sync
        return confirm_gone(api, resource, exc)


def confirm_gone(api: BitbucketApi, resource: Listed, exc: NotFoundError) -> Gone:
    """Read the resource itself: `Gone` if Bitbucket says it does not exist, else `UnexplainedNotFoundError`
    (an `EndpointNotFoundError` or any other error of that read propagates)."""
    read: Callable[[str, str], object] = api.repository if resource.kind == "repository" else api.project
    try:
        read(resource.workspace, resource.path_id)
    except NotFoundError as again:
        return Gone(resource, exc.endpoint, again.endpoint)
    raise UnexplainedNotFoundError(
        f"{exc.endpoint} answered HTTP 404 ({exc.body or exc}), but the {resource} itself reads fine: the "
        f"404 is not about the {resource.kind}, and nothing was taken as deleted",
        endpoint=exc.endpoint,
        status=404,
        workspace=resource.workspace,
        body=exc.body,
    )
