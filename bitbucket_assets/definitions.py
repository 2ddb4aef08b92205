"""Dagster definitions: this module only merges what the domain packages under `defs/` define, from one
`Settings` (workspace.yaml, `[tool.dagster]`, the Dockerfile and deploy/values.yaml name it)."""

import dagster as dg

from .defs import sync_job
from .defs.access_requests import jobs as access_requests
from .defs.monitoring import sensors as monitoring
from .defs.resources import with_resources
from .settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    defs = with_resources(
        settings,
        sync_job.definitions(),
        access_requests.definitions(settings),
        monitoring.definitions(settings),
        dg.Definitions(schedules=[sync_job.daily_sync(settings)]),
    )
    return monitoring.with_sync_freshness(defs, settings)


defs = build_definitions()
