"""A sensor that posts every failed run, and a freshness policy on the raw snapshot's manifest that marks it
stale when no complete sync arrived in time."""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

from ...alerts import post_alert
from ...settings import Settings

SYNC_MANIFEST = dg.AssetKey(["raw", "syncs"])  # materialized once per complete sync


def with_sync_freshness(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """The raw snapshot's manifest must be updated by a complete sync at least every
    BITBUCKET_SYNC_STALE_HOURS:
    Dagster marks it stale (asset health) when none arrived in time."""
    policy = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=settings.bitbucket_sync_stale_hours))

    # Dagster's documented way to attach a policy to an asset defined elsewhere; "preview" in 1.13.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_resolved_asset_specs(
            func=lambda spec: dg.apply_freshness_policy(spec, policy), selection=[SYNC_MANIFEST]
        )


def failure_alerts(settings: Settings) -> dg.SensorDefinition:
    webhook = settings.bitbucket_alert_webhook

    @dg.run_failure_sensor(
        name="alert_on_failed_run", description="Posts every failed run to BITBUCKET_ALERT_WEBHOOK."
    )
    def alert_on_failed_run(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        failure = context.failure_event.message
        text = f"bitbucket-access: run {run.run_id} of job {run.job_name} failed: {failure}"
        context.log.error(text)
        if webhook is not None:
            post_alert(webhook.get_secret_value(), text)

    return alert_on_failed_run


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(sensors=[failure_alerts(settings)])
