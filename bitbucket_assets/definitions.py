"""Dagster definitions: this module only assembles what the domain packages define."""

import dagster as dg

defs = dg.Definitions()
