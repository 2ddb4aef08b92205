"""Named organisations (`tiny`, `documented`, `demo`, `large`) and organisation files, behind one loader."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .generate import SHAPES, START, generate_company
from .model import Organisation
from .orgfile import load_organisation_file

BUILTIN_FILES = {name: Path(__file__).parent / "orgs" / f"{name}.yaml" for name in ("tiny", "documented")}
NAMES = ("tiny", "documented", "demo", "large")


def load_organisation(name_or_path: str, seed: int = 7, now: datetime | None = None) -> Organisation:
    """`tiny`, `documented`, `demo`, `large`, or the path of a YAML/JSON organisation file.

    `now` sets a generated company's clock (default: a fixed date, so tests are reproducible); the
    identifiers depend only on the seed."""
    if name_or_path in BUILTIN_FILES:
        return load_organisation_file(BUILTIN_FILES[name_or_path])
    if name_or_path in SHAPES:
        return generate_company(SHAPES[name_or_path], seed=seed, now=now or START)
    path = Path(name_or_path)
    if path.exists():
        return load_organisation_file(path)
    raise ValueError(
        f"unknown organisation {name_or_path!r}: use one of {', '.join(NAMES)} or a YAML/JSON file"
    )
