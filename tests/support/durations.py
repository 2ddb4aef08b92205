"""How long each test module took in a whole run, kept in tests/durations.json to order the next runs.

pytest-xdist (`--dist loadfile`) hands each worker one module at a time, in the order the modules are
collected (`--no-loadscope-reorder`); conftest.py collects the longest first, so that a run's last minutes
are short modules spread over every worker rather than one long module running alone. The figures only order:
a stale or missing figure makes a run slower, never wrong. Remake them with `make test-durations` after adding
slow tests.
"""

from __future__ import annotations

import json
import resource
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

FILE = Path(__file__).resolve().parents[1] / "durations.json"
UNKNOWN_SECONDS = 10.0  # a module not in the file yet: ordered among the middling ones


def load() -> dict[str, float]:
    return json.loads(FILE.read_text()) if FILE.exists() else {}


def cpu_seconds() -> float:
    """User and system CPU of this process and of the children it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def from_junit(report: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Wall seconds (setup, call and teardown of its tests) and CPU seconds per module, from pytest's
    `--junitxml` report (conftest.py records each test's CPU as its `cpu_s` property)."""
    seconds: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is the dotted module path, then the class if any: keep the part that names a file.
        while module and not module[-1].startswith("test_"):
            module.pop()
        if module:
            name = "/".join(module) + ".py"
            seconds[name] += float(case.get("time") or 0)
            cpu[name] += sum(float(p.get("value")) for p in case.iter("property") if p.get("name") == "cpu_s")
    return (
        {name: round(value, 1) for name, value in sorted(seconds.items())},
        {name: round(value, 1) for name, value in sorted(cpu.items())},
    )


if __name__ == "__main__":
    wall, cpu = from_junit(Path(sys.argv[1]))
    FILE.write_text(json.dumps(wall, indent=1) + "\n")
    print(f"wrote {FILE}; CPU {sum(cpu.values()):.0f} s in all, wall {sum(wall.values()):.0f} s; most CPU:")
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {seconds:7.1f} s CPU  {wall[name]:7.1f} s wall  {name}")
