"""`.env.example` is safe to load the way the README says (`set -a; . ./.env; set +a`): no value is split,
glob-expanded or run as a command, and every variable arrives exactly as written."""

from __future__ import annotations

import re
import shutil
import subprocess

from bitbucket_assets.settings import load_settings
from tests.support import ROOT

ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def written() -> dict[str, str]:
    """Each active assignment as a reader of the file means it: the value with its quotes removed."""
    out = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            out[name] = (
                value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value
            )
    return out


def test_sourcing_the_example_gives_every_variable_as_written(tmp_path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    # Files a glob in an unquoted value would expand to, and a command an unquoted word would run.
    for name in ("Makefile", "5", "README.md"):
        (tmp_path / name).write_text("")
    result = subprocess.run(
        ["bash", "-c", "set -a; . ./.env; set +a; env -0"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    loaded = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    expected = written()
    assert {name: loaded.get(name) for name in expected} == expected
    assert (
        expected["BITBUCKET_SYNC_CRON"] == "0 5 * * *"
        and expected["BITBUCKET_JIT_EXPIRY_CRON"] == "*/15 * * * *"
    )


def test_the_example_is_the_production_template_and_loads_as_settings() -> None:
    values = written()
    assert values["BITBUCKET_API_URL"] == "https://api.bitbucket.org"
    # the operator fills them in
    assert values["BITBUCKET_EMAIL"] == "" and values["BITBUCKET_API_TOKEN"] == ""
    settings = load_settings(env={k: v for k, v in values.items() if v})
    assert (
        settings.bitbucket_sync_cron == "0 5 * * *" and settings.bitbucket_jit_expiry_cron == "*/15 * * * *"
    )
