"""The layers of docs/design.md, enforced: who may read the environment, build Bitbucket paths, import
Dagster."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "bitbucket_assets"
# The simulator (simulator/, a distribution of its own) is the independent reference the product is checked
# against: it keeps its own paths and is not part of the product.
PRODUCT = list(PACKAGE.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string nodes that are docstrings (prose may mention paths and variables)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = []
    for path in PRODUCT:
        if path == PACKAGE / "settings.py":
            continue
        for node in ast.walk(_tree(path)):
            name = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.id
                if isinstance(node, ast.Name)
                else ""
            )
            if name in ("environ", "getenv", "putenv", "unsetenv"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


PATH_MARKERS = ("/2.0/", "/1.0/", "2.0/", "1.0/groups", "/admin/v2/")  # Bitbucket's and the Admin API's


def test_bitbucket_and_admin_api_paths_are_built_only_in_the_client() -> None:
    offenders = []
    for path in PRODUCT:
        if "client" in path.relative_to(PACKAGE).parts:
            continue
        tree = _tree(path)
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            if literal and any(marker in node.value for marker in PATH_MARKERS):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("bitbucket_assets.cli", ("dagster", "bitbucket_simulator")),
        # The client reads its defaults from the settings, never the other way round: no import circle.
        ("bitbucket_assets.settings", ("dagster", "bitbucket_assets.client", "bitbucket_simulator")),
        ("bitbucket_assets.clock", ("dagster",)),
        ("bitbucket_assets.warehouse.files", ("dagster",)),
        # How dbt runs on a warehouse: shared by the assets, the demo and the plan views built outside a job.
        ("bitbucket_assets.warehouse.dbt_runs", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.warehouse.plan_views", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.client", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.extraction.sync", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.provisioning.engine", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.reporting.evidence", ("dagster",)),
        ("bitbucket_assets.dashboard.data", ("dagster", "bitbucket_simulator")),
        ("bitbucket_assets.services", ("dagster", "bitbucket_simulator")),
    ],
)
def test_plain_layers_do_not_import_dagster_or_the_simulator(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] if m.startswith('dagster') else m "
        "for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert not [m for m in forbidden if m in loaded or any(x.startswith(m + ".") for x in loaded)]


def test_defs_hold_only_dagster_objects() -> None:
    """Every module under defs/ imports Dagster (it defines assets, resources, jobs) and nothing else imports
    from defs/ but the definitions and the services that run jobs."""
    for path in (PACKAGE / "defs").rglob("*.py"):
        if path.name == "__init__.py":
            continue
        text = path.read_text()
        assert "import dagster" in text or "from dagster" in text, (
            f"{path.relative_to(ROOT)} holds no Dagster object"
        )
    importers = {
        str(p.relative_to(ROOT))
        for p in PRODUCT
        if "defs" not in p.relative_to(PACKAGE).parts
        and ("from .defs" in p.read_text() or ".defs." in p.read_text())
    }
    assert importers == {"bitbucket_assets/definitions.py", "bitbucket_assets/services.py"}


def test_library_and_dagster_objects_never_share_a_name() -> None:
    """One name per room: no folder or module under defs/ is named like one of the library's (a reader who
    sees `sync` or `warehouse` knows which layer it is in)."""
    defs = PACKAGE / "defs"
    names = lambda paths: {p.stem for p in paths if p.name != "__init__.py"}  # noqa: E731
    dagster_side = names(defs.rglob("*")) - {"__pycache__"}
    library_side = names(p for p in PACKAGE.rglob("*") if defs not in p.parents and p != defs) - {
        "__pycache__"
    }
    assert dagster_side & library_side == set()


def test_the_product_does_not_ship_the_simulator_or_the_demo() -> None:
    """The simulator and the demo are their own distribution (simulator/pyproject.toml): neither the product's
    package nor its dependencies (the production image) carry them, or the web server they need."""
    import tomllib

    product = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(
        dep.split("[")[0].split(">")[0].split("=")[0] in ("starlette", "uvicorn")
        for dep in product["dependencies"]
    )
    assert not (PACKAGE / "simulator").exists() and not (PACKAGE / "demo.py").exists()
    simulator = tomllib.loads((ROOT / "simulator" / "pyproject.toml").read_text())["project"]
    assert "bitbucket-access" in simulator["dependencies"]


def test_readme_layout_names_every_package() -> None:
    """README's Layout section is the tree, indented: every package of the product and the simulator is in it,
    at its place, so it cannot drift from the tree."""
    block = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    named, stack = set(), []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        entry = line.strip().split("  ")[0]
        if not entry.endswith("/") or indent > 8:
            continue  # a file, or the continuation of a description
        depth = indent // 2
        stack = [*stack[:depth], entry.rstrip("/")]
        named.add("/".join(stack))
    packages = {
        str(p.parent.relative_to(ROOT))
        for p in [*PACKAGE.rglob("__init__.py"), *(ROOT / "simulator").rglob("__init__.py")]
    }
    assert sorted(packages - named) == []


def test_code_comments_point_only_at_files_in_the_repository() -> None:
    hits = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            "PRODUCT" + ".md",  # written in two parts so that this file does not name it
            "--",
            "*.py",
            "*.sql",
            "*.yml",
            "*.yaml",
            "*.toml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert hits == ""
