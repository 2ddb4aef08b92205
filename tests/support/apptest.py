"""Streamlit's AppTest run so that an old CPython bug cannot fail a dashboard test.

On CPython 3.11.7 (CI's Python) the AST builder keeps its depth counter in interpreter-wide state
(python/cpython#106905). AppTest compiles the page with `ast.parse`; when the cycle collector runs in the
middle and finalises a connection an earlier test left behind, SQLAlchemy logs a traceback, 3.11's traceback
formatting calls `ast.parse` itself, and the outer parse fails with "AST constructor recursion depth
mismatch": the page renders nothing (it failed CI once). So the collector is held off during the run: a
standalone reproduction fails 20 parses of 20 without that, none with it.
"""

from __future__ import annotations

import gc

from streamlit.testing.v1 import AppTest


def run_page(app: AppTest) -> AppTest:
    """`app.run()` with the cycle collector paused during the run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return app.run()
    finally:
        if was_enabled:
            gc.enable()
