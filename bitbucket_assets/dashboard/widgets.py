"""What every dashboard page is built from: the view's state in the URL, the dashboard's own links, text that
may hold names (`say`, `linked_table`), readable tables and CSV downloads. The pages (`overview.py`,
`who_has_access.py`, ...) import these; app.py picks the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import freshness, rendering
from bitbucket_assets.dashboard.rendering import Link
from bitbucket_assets.reporting.safe_text import spreadsheet_cell, visible

TABLE_ROWS = 300  # rows shown as a linked table; the download holds them all


@dataclass(frozen=True)
class View:
    """What the sidebar chose for every page: the workspace (None: all), and the snapshot day and its end."""

    workspace: str | None
    as_of_day: date
    as_of: datetime

    @property
    def scope(self) -> str:
        return self.workspace or "every workspace"


def say(text, tag: str = "p", css: str = "", where=st) -> None:
    """Text that may hold names, in one element of the dashboard's own: shown as typed, never as Markdown."""
    where.html(rendering.element(text, tag, css))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 resource`, `2 resources`, `1,204 people` (`plural` where adding an s is wrong)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


# ---- the view's state, kept in the URL ----


def param(name: str, default: str | None = None) -> str | None:
    return st.query_params.get(name, default)


def choose(label: str, options: list, name: str, fmt=str, where=None, default=None):
    """A select box whose choice is the URL parameter `name` (kept when the URL names an option; else
    `default` when it is an option, else the first)."""
    wanted = param(name)
    keys = [str(o) for o in options]
    if wanted in keys:
        index = keys.index(wanted)
    else:
        index = keys.index(str(default)) if default is not None and str(default) in keys else 0
    shown = lambda option: visible(fmt(option))  # noqa: E731 - a picker shows names as typed
    box = where if where is not None else st.sidebar
    choice = box.selectbox(label, options, index=index, format_func=shown, key=f"pick_{name}")
    st.query_params[name] = str(choice)
    return choice


def choose_date(label: str, name: str, default: date, where=st) -> date:
    """A date input whose value is the URL parameter `name` (ISO date)."""
    try:
        initial = date.fromisoformat(param(name) or "")
    except ValueError:
        initial = default
    chosen = where.date_input(label, initial, key=f"date_{name}")
    st.query_params[name] = chosen.isoformat()
    return chosen


def link(page: str, **extra: str) -> str:
    """A relative link to `page` with the current workspace and date, plus `extra` parameters."""
    keep = {k: st.query_params[k] for k in ("ws", "as_of") if k in st.query_params}
    return "?" + urlencode({"page": page, **keep, **{k: v for k, v in extra.items() if v is not None}})


def person_link(name, user_uuid: str) -> Link:
    return Link(name, link("Person", user=user_uuid))


def resource_link(workspace: str, resource_type: str, key: str) -> Link | str:
    """The Who-has-access page of a repository or project (the resource's name as text for anything else)."""
    if resource_type not in ("repository", "project") or not key:
        return (
            f"{resource_type} {workspace}"
            if resource_type == "workspace" or not key
            else f"{resource_type} {workspace}/{key}"
        )
    return Link(f"{workspace}/{key}", link("Who has access", resource=f"{workspace}|{resource_type}|{key}"))


def end_of(day: date) -> datetime:
    return datetime.combine(day, time.max).replace(tzinfo=UTC)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min).replace(tzinfo=UTC)


# ---- tables ----


def headers(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as words: `user_account_id` -> `User account id`."""
    return frame.rename(columns=lambda c: c.replace("_", " ").capitalize())


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for `st.dataframe` and charts (plain text): readable timestamps, and every text cell with its
    control and bidi characters shown as escapes."""
    return readable(frame).map(lambda v: visible(v) if isinstance(v, str) else v)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as `YYYY-MM-DD HH:MM UTC`, not ISO strings with microseconds."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M UTC").fillna("")
    return out


def download(frame: pd.DataFrame, view: str, **parameters) -> None:
    """The whole table as CSV (cells made inert for spreadsheets), named after the view and its parameters,
    with the time of its data in two last columns (freshness.py)."""
    parts = [view, *(str(v) for v in parameters.values() if v)]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)).strip("-") + ".csv"
    safe = readable(freshness.stamped(frame)).map(lambda v: spreadsheet_cell(v) if isinstance(v, str) else v)
    st.download_button(
        f"Download {len(frame)} rows (CSV)",
        safe.to_csv(index=False),
        file_name=name,
        mime="text/csv",
        key=f"download_{view}",
    )


def linked_table(
    frame: pd.DataFrame,
    column: str,
    links: Sequence[Link | str | None],
    total: int | None = None,
    more: dict[str, Sequence[Link | str | None]] | None = None,
) -> None:
    """A static table whose first column, `column`, holds the dashboard's `links`, and whose columns named in
    `more` hold links too (a missing link shows its cell as text). At most TABLE_ROWS rows, said above the
    table with the number of rows there are (`total`, else the frame's) and that the CSV has them all."""
    total = len(frame) if total is None else total
    if total > TABLE_ROWS:
        say(
            f"Showing the first {TABLE_ROWS:,} of {total:,} rows: the CSV download has all {total:,}.",
            css="bb-note",
        )
    shown = readable(frame).head(TABLE_ROWS)
    rows = list(shown.itertuples(index=False, name=None))
    st.html(
        rendering.linked_table(
            column,
            links[:TABLE_ROWS],
            list(shown.columns),
            rows,
            {k: v[:TABLE_ROWS] for k, v in (more or {}).items()},
        )
    )
