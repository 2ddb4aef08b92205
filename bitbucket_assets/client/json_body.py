"""Response bodies as JSON the client can use: decoded, and no deeper than any document Bitbucket sends."""

from __future__ import annotations

from typing import Any

import requests

# Bitbucket's documents nest a few levels deep; anything deeper than this is no answer the client can use (and
# deep enough nesting would exhaust Python's recursion when decoded or written back as JSON).
MAX_JSON_DEPTH = 64


class TooDeep(ValueError):
    """JSON nested deeper than `MAX_JSON_DEPTH`."""


def parse_json(response: requests.Response) -> Any:
    """The body as JSON. `ValueError` when it is not JSON; `TooDeep` (a `ValueError`) when it nests deeper
    than `MAX_JSON_DEPTH`, however deep: decoding stops with `RecursionError` long before memory runs out."""
    try:
        value = response.json()
    except RecursionError:
        raise TooDeep("JSON nested too deep to decode") from None
    stack = [(value, 1)]
    while stack:  # iteratively: the check itself must not recurse
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return value
