"""A loopback HTTP server that answers with recorded Bitbucket payloads (tests/fixtures/recorded), so the
real client, extraction, dbt build and Dagster job run on what Bitbucket and Atlassian's documentation
actually show rather than on the simulator's idea of it.

A scenario (`tests/fixtures/recorded/scenarios/<name>.json`) maps `METHOD /decoded/path` to a recorded answer
(`file`, optional `status` and `pick`, a dotted path into the file's JSON); a scenario may extend another and
remove answers (`null`). Paths it does not name get its `default` (Bitbucket's router 404, as recorded). The
query string is ignored: every recorded list is one page without `next`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support import ROOT

RECORDED = ROOT / "tests" / "fixtures" / "recorded"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    source: str  # the recorded file it comes from


@dataclass(frozen=True)
class Served:
    method: str
    path: str
    status: int


def _load(entry: dict[str, Any]) -> Answer:
    data: Any = json.loads((RECORDED / entry["file"]).read_text())
    for step in (entry.get("pick") or "").split(".") if entry.get("pick") else ():
        data = data[int(step)] if isinstance(data, list) else data[step]
    return Answer(int(entry.get("status", 200)), json.dumps(data).encode(), entry["file"])


@dataclass
class Scenario:
    name: str
    answers: dict[str, Answer]
    default: Answer

    @classmethod
    def load(cls, name: str) -> Scenario:
        spec = json.loads((RECORDED / "scenarios" / f"{name}.json").read_text())
        base = cls.load(spec["extends"]) if "extends" in spec else None
        answers = dict(base.answers) if base else {}
        for key, entry in spec.get("answers", {}).items():
            if entry is None:
                answers.pop(key, None)
            else:
                answers[key] = _load(entry)
        default = _load(spec["default"]) if "default" in spec else base.default
        return cls(name, answers, default)

    def answer(self, method: str, path: str) -> Answer:
        return self.answers.get(f"{method} {path.rstrip('/')}", self.default)

    def payloads(self) -> list[Any]:
        """Every body the scenario can serve, parsed."""
        return [json.loads(a.body) for a in self.answers.values()]


@dataclass
class ReplayServer:
    """Serves one scenario on 127.0.0.1 (switch it with `serve`); `url` is an API root (BITBUCKET_API_URL)."""

    scenario: Scenario
    served: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if not self.headers.get("Authorization"):
                    self._send(Answer(401, b'{"type": "error", "error": {"message": "Unauthorized"}}', ""))
                    return
                path = unquote(urlsplit(self.path).path)
                answer = replay.scenario.answer(self.command, path)
                replay.served.append(Served(self.command, path, answer.status))
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args) -> None:  # quiet: the test asserts on `served`
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, name: str) -> None:
        self.scenario = Scenario.load(name)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def replay(name: str) -> ReplayServer:
    return ReplayServer(Scenario.load(name))


def account_ids(value: Any) -> dict[str, str]:
    """Every (uuid, account id) pair any object in a payload names."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        if value.get("uuid") and value.get("account_id"):
            found[value["uuid"]] = value["account_id"]
        for item in value.values():
            found.update(account_ids(item))
    elif isinstance(value, list):
        for item in value:
            found.update(account_ids(item))
    return found
