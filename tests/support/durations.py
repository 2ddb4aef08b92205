"""How long each test module took in a whole run, kept in tests/durations.json to order the next runs.

pytest-xdist (`--dist loadfile`) hands each worker one module at a time, in the order the modules are
collected (`--no-loadscope-reorder`); conftest.py collects the longest first, so that a run's last minutes
are short modules spread over every worker rather than one long module running alone. The figures only order:
a stale or missing figure makes a run slower, never wrong. Remake them with `make test-durations` after adding
slow tests.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

FILE = Path(__file__).resolve().parents[1] / "durations.json"
UNKNOWN_SECONDS = 10.0  # a module not in the file yet: ordered among the middling ones


def load() -> dict[str, float]:
    return json.loads(FILE.read_text()) if FILE.exists() else {}


def from_junit(report: Path) -> dict[str, float]:
    """Seconds per module (setup, call and teardown of its tests) from pytest's `--junitxml` report."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is the dotted module path, then the class if any: keep the part that names a file.
        while module and not module[-1].startswith("test_"):
            module.pop()
        if module:
            seconds["/".join(module) + ".py"] += float(case.get("time") or 0)
    return {name: round(value, 1) for name, value in sorted(seconds.items())}


if __name__ == "__main__":
    FILE.write_text(json.dumps(from_junit(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {FILE}")
