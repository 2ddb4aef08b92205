"""A Bitbucket Cloud simulator: a real HTTP server on loopback serving a synthetic organisation."""

from .app import (
    SIM_ACCESS_TOKEN,
    SIM_API_TOKEN,
    SIM_APP_PASSWORD,
    SIM_OAUTH_CLIENT_ID,
    SIM_OAUTH_CLIENT_SECRET,
    Simulator,
)
from .faults import Faults, RateLimit
from .generate import advance
from .organisations import load_organisation
from .server import SimulatorServer

__all__ = [
    "SIM_ACCESS_TOKEN",
    "SIM_API_TOKEN",
    "SIM_APP_PASSWORD",
    "SIM_OAUTH_CLIENT_ID",
    "SIM_OAUTH_CLIENT_SECRET",
    "Faults",
    "RateLimit",
    "Simulator",
    "SimulatorServer",
    "advance",
    "load_organisation",
]
