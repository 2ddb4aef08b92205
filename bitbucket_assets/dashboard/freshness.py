"""How old what the dashboard shows is: every page says the time of the newest sync it shows (the read copy)
and of the provisioning log's newest entry (the provisioning copy, published by every provisioning run,
review import and evidence record: warehouse/provisioning_copy.py); every CSV it offers carries both."""

from __future__ import annotations

import pandas as pd

from ..warehouse.provisioning_copy import DataTimes, when
from . import data, rendering

# The columns every downloaded CSV ends with (docs/dashboard.md, "The time of the data").
STAMP_COLUMNS = ("snapshot_at", "provisioning_log_at")


def sentence(times: DataTimes) -> str:
    """E.g. `Data: snapshot of 2026-12-04 14:02 UTC (the newest sync); provisioning log to ...`."""
    published = f", published {when(times.published_at)}" if times.published_at else ""
    return (
        f"Data: snapshot of {when(times.snapshot_at, 'no sync yet')} (the newest sync); provisioning log "
        f"to {when(times.provisioning_at, 'no entry yet')}{published}"
    )


def render(where) -> None:
    """The sentence, in the dashboard's own element (`where`: the sidebar, shown beside every page)."""
    where.html(rendering.element(sentence(data.data_times()), "p", "bb-caption bb-data-times"))


def stamped(frame: pd.DataFrame, times: DataTimes | None = None) -> pd.DataFrame:
    """`frame` with the time of its data in two last columns, the same on every row, so that a CSV says how
    old it is wherever it is opened (a comment line would break spreadsheets and `read_csv`)."""
    times = times or data.data_times()
    out = frame.copy()
    out[STAMP_COLUMNS[0]] = when(times.snapshot_at, "")
    out[STAMP_COLUMNS[1]] = when(times.provisioning_at, "")
    return out
