"""Serving a `Simulator` over real HTTP on loopback: in a thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from .app import DroppedConnection, Simulator


class _QuietDroppedConnections(logging.Filter):
    """A simulated dropped connection is intended: keep its traceback out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDroppedConnections())


class SimulatorServer:
    """A simulator listening on 127.0.0.1; `url` is its API root (what BITBUCKET_API_URL takes)."""

    def __init__(
        self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ):
        self.simulator = simulator
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(2048)  # connections queue from now on, even before uvicorn starts accepting
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            simulator.app, log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Bitbucket simulator did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
