"""A Bitbucket Cloud simulator: a real HTTP server on loopback serving a synthetic organisation."""

from .admin_api import SIM_DIRECTORY_ID, SIM_ORG_API_KEY, SIM_ORG_API_KEY_READ_ONLY, SIM_ORG_ID, OrgKeys
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
    "SIM_DIRECTORY_ID",
    "SIM_OAUTH_CLIENT_ID",
    "SIM_OAUTH_CLIENT_SECRET",
    "SIM_ORG_API_KEY",
    "SIM_ORG_API_KEY_READ_ONLY",
    "SIM_ORG_ID",
    "Faults",
    "OrgKeys",
    "RateLimit",
    "Simulator",
    "SimulatorServer",
    "advance",
    "load_organisation",
]
