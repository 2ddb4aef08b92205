"""The image (Dockerfile) with no container engine: its build stage's RUN steps replayed in a fresh virtualenv
and a copy of what it COPYs, then the server its CMD starts health-checked and asked for our jobs; and the
Dockerfile, the Helm values and the instance file agree on module, port and secrets.

The replay installs for real (the `production` extra: dagster-postgres, dagster-k8s) into a new virtualenv,
with the uv of the dev extra (the version the Dockerfile copies) and this machine's package sources as pip has
them; it only drops `--compile-bytecode`, which changes nothing this test checks.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT, free_port, wait_for


def instructions() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments); the file uses no line
    continuations."""
    stages: list[list[tuple[str, str]]] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, rest))
    return stages


def package_sources() -> dict[str, str]:
    """This machine's package sources as pip has them (its configuration files and `PIP_` variables), as uv's
    variables: uv reads neither, and the replay should install from where `make install` did (a mirror, a
    directory of wheels, a certificate authority)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    # `section.key='value'`, the value as Python writes a string; the install command reads `global`, then
    # `install`, then the environment (`:env:`), each overriding the one before.
    found: dict[str, dict[str, str]] = {"global": {}, "install": {}, ":env:": {}}
    for line in listed.stdout.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.partition(".")
        if section in found:
            found[section][key] = ast.literal_eval(value)
    config = {**found["global"], **found["install"], **found[":env:"]}
    config |= {k[4:].lower().replace("_", "-"): v for k, v in os.environ.items() if k.startswith("PIP_")}
    sources = {"UV_INDEX_STRATEGY": "unsafe-best-match"}  # pip's: the best version any index offers
    if config.get("index-url"):
        sources["UV_DEFAULT_INDEX"] = config["index-url"]
    if config.get("extra-index-url"):
        sources["UV_EXTRA_INDEX_URL"] = " ".join(config["extra-index-url"].split())
    if config.get("find-links"):
        sources["UV_FIND_LINKS"] = ",".join(config["find-links"].split())
    if config.get("constraint"):
        sources["UV_CONSTRAINT"] = " ".join(config["constraint"].split())
    if config.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        sources["UV_NO_INDEX"] = "1"
    if config.get("trusted-host"):
        sources["UV_INSECURE_HOST"] = " ".join(config["trusted-host"].split())
    if config.get("cert"):
        sources["SSL_CERT_FILE"] = config["cert"]
    return sources


def listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments)


def test_dockerfile_values_and_instance_agree() -> None:
    build, final = instructions()
    assert build[0][1].endswith("AS build") and any(w == "COPY" and "--from=build" in a for w, a in final)
    user = [a for w, a in final if w == "USER"]
    assert user == ["dagster"]  # not root
    # signing.py runs ssh-keygen: it checks approvals and reviews, signs the log's head and evidence packs.
    assert any(w == "RUN" and "install" in a and "openssh-client" in a for w, a in final)
    assert any(w == "RUN" and "dbt parse" in a for w, a in build)
    assert any(w == "RUN" and '".[production]"' in a for w, a in build)
    cmd = exec_form(next(a for w, a in final if w == "CMD"))
    port = cmd[cmd.index("--port") + 1]
    values = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())["dagster-user-deployments"][
        "deployments"
    ][0]
    assert (
        cmd[cmd.index("--module-name") + 1]
        == values["dagsterApiGrpcArgs"][1]
        == "bitbucket_assets.definitions"
    )
    assert int(port) == values["port"] and f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text()
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert [s["name"] for s in values["envSecrets"]] == instance["run_launcher"]["config"]["env_secrets"]


@pytest.mark.timeout(900)
def test_build_steps_replayed_and_the_server_serves_our_definitions(tmp_path) -> None:
    build, final = instructions()
    app, venv = tmp_path / "app", tmp_path / "venv"
    app.mkdir()
    installed = False
    # A build sees none of the session's dbt settings (tests/conftest.py): its `dbt parse` writes a manifest.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    tools = tmp_path / "bin"  # what the build stage copies from other images
    tools.mkdir()
    build_env = {**clean, **package_sources(), "PATH": f"{tools}:{os.environ['PATH']}"}
    for word, arguments in build:
        if word == "COPY" and arguments.startswith("--from=ghcr.io/astral-sh/uv:"):
            image, source, target = arguments.split()
            assert image.rpartition(":")[2] == metadata.version("uv"), "not the dev extra's uv"
            assert (source, target) == ("/uv", "/usr/local/bin/uv")
            (tools / "uv").symlink_to(Path(sys.executable).parent / "uv")
        elif word == "COPY":
            *sources, target = arguments.split()
            for source in sources:
                destination = app / target if target not in ("./", ".") else app / source
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, destination, ignore=shutil.ignore_patterns("target", "logs")
                    )
                else:
                    shutil.copy(ROOT / source, app / source if target.endswith("/") else destination)
        elif word == "RUN":
            command = arguments.replace("/opt/venv", str(venv))
            if command.startswith("python -m venv"):
                command = command.replace("python", sys.executable, 1)
            # Byte-compiling every installed module changes nothing this test checks, and costs about 25 s of
            # CPU.
            if command.startswith("uv "):  # the image's own, not one this machine happens to have
                assert (tools / "uv").exists(), "the build stage runs uv before copying it"
                command = command.replace("uv ", f"{tools / 'uv'} ", 1)
            if " pip install " in command:
                command = command.replace(" --compile-bytecode", "")
                installed = True
            done = subprocess.run(
                ["bash", "-c", command], cwd=app, env=build_env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"{arguments}: {done.stderr[-2000:]}"
    assert installed and (app / "dbt_project" / "target" / "manifest.json").exists()
    # The image carries the product, not the simulator or the demo (a distribution of their own).
    probe = "import importlib.util as u; print(u.find_spec('bitbucket_assets') is not None, "
    probe += "u.find_spec('bitbucket_simulator') is None)"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert found.stdout.split() == ["True", "True"], found.stderr[-1000:]

    cmd = exec_form(next(a for w, a in final if w == "CMD"))
    port = str(free_port())
    cmd[cmd.index("--port") + 1], cmd[cmd.index("--host") + 1] = port, "127.0.0.1"
    env = {**clean, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "DAGSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [str(venv / "bin" / cmd[0]), *cmd[1:]],
        cwd=app,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Each health check is a `dagster` process (about 2 s of CPU): ask once the server listens, or exited.
        wait_for(
            "the gRPC server to listen", lambda: server.poll() is not None or listens(int(port)), timeout=300
        )
        deadline = time.monotonic() + 300
        while True:
            health = subprocess.run(
                [str(venv / "bin" / "dagster"), "api", "grpc-health-check", "--port", port],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if health.returncode == 0:
                break
            assert server.poll() is None, server.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the gRPC server never became healthy"
            time.sleep(2)
        listing = [
            str(venv / "bin" / "dagster"),
            "job",
            "list",
            "--grpc-port",
            port,
            "--grpc-host",
            "127.0.0.1",
        ]
        jobs = subprocess.run(listing, env=env, capture_output=True, text=True, timeout=120)
        assert jobs.returncode == 0, jobs.stderr[-2000:]
        for job in ("bitbucket_sync", "provision_group_membership", "expire_jit_access"):
            assert job in jobs.stdout
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:  # what is tested is serving; a busy machine may be slow to stop it
            server.kill()
            server.wait(timeout=60)
