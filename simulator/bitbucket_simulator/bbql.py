"""The subset of Bitbucket's query language (BBQL) the simulator understands.

`q`: comparisons (`=`, `!=`, `~`, `!~`, `>`, `>=`, `<`, `<=`), `IN` / `NOT IN` lists, `AND`, `OR`
and parentheses over the fields an endpoint declares; anything else is a 400, as on Bitbucket.
`sort`: one declared field, `-` for descending.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Accessor = Callable[[Any], Any]
Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|!~|=|~|>|<)|(?P<paren>[(),])'
    r"|(?P<word>[A-Za-z_][\w.:+-]*|-?\d[\w.:+-]*))"
)
_PERMISSION_RANK = {"none": 0, "read": 1, "write": 2, "create-repo": 3, "admin": 4, "member": 1, "owner": 4}


class QueryError(ValueError):
    """A `q` or `sort` the endpoint cannot evaluate: answered with 400."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"Invalid query near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse(text: str, fields: dict[str, Accessor]) -> Predicate:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError("Unexpected end of query")
        pos += 1
        return tokens[pos - 1]

    def keyword(word: str) -> bool:
        tok = peek()
        return tok is not None and tok[0] == "word" and tok[1].upper() == word

    def expr() -> Predicate:
        left = term()
        while keyword("OR"):
            take()
            right, prev = term(), left
            left = lambda o, a=prev, b=right: a(o) or b(o)  # noqa: E731
        return left

    def term() -> Predicate:
        left = factor()
        while keyword("AND"):
            take()
            right, prev = factor(), left
            left = lambda o, a=prev, b=right: a(o) and b(o)  # noqa: E731
        return left

    def factor() -> Predicate:
        tok = take()
        if tok == ("paren", "("):
            inner = expr()
            if take() != ("paren", ")"):
                raise QueryError("Missing closing parenthesis")
            return inner
        if tok[0] != "word":
            raise QueryError(f"Expected a field name, got {tok[1]!r}")
        name = tok[1]
        if name not in fields:
            raise QueryError(f"Invalid field name {name!r}: supported fields are {', '.join(sorted(fields))}")
        get = fields[name]
        negate = False
        if keyword("NOT"):
            take()
            negate = True
        if keyword("IN"):
            take()
            values = value_list()
            return lambda o: (get(o) in values) != negate
        if negate:
            raise QueryError("NOT must be followed by IN")
        op = take()
        if op[0] != "op":
            raise QueryError(f"Expected an operator after {name!r}")
        return _compare(get, op[1], value(), ranked=name.endswith("permission"))

    def value_list() -> list[Any]:
        if take() != ("paren", "("):
            raise QueryError("IN needs a parenthesised list")
        values = [value()]
        while peek() == ("paren", ","):
            take()
            values.append(value())
        if take() != ("paren", ")"):
            raise QueryError("Unterminated IN list")
        return values

    def value() -> Any:
        kind, text = take()
        if kind == "str":
            return text[1:-1].replace('\\"', '"')
        if kind == "word":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            try:
                return int(text)
            except ValueError:
                return text  # unquoted datetimes compare as ISO strings
        raise QueryError(f"Expected a value, got {text!r}")

    predicate = expr()
    if pos != len(tokens):
        raise QueryError(f"Unexpected {tokens[pos][1]!r} in query")
    return predicate


def _compare(get: Accessor, op: str, expected: Any, ranked: bool) -> Predicate:
    def key(v: Any) -> Any:
        return _PERMISSION_RANK.get(v, -1) if ranked else v

    def ordered(fn: Callable[[Any, Any], bool]) -> Predicate:
        def check(o: Any) -> bool:
            actual = get(o)
            return actual is not None and fn(key(actual), key(expected))

        return check

    if op == "=":
        return lambda o: get(o) == expected
    if op == "!=":
        return lambda o: get(o) != expected
    if op in ("~", "!~"):
        needle = str(expected).lower()
        return lambda o: (needle in str(get(o) or "").lower()) == (op == "~")
    return ordered(
        {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }[op]
    )


def sort_key(text: str, fields: dict[str, Accessor]) -> tuple[Accessor, bool]:
    descending = text.startswith("-")
    name = text.lstrip("-")
    if name not in fields:
        raise QueryError(f"Invalid sort field {name!r}: supported fields are {', '.join(sorted(fields))}")
    get = fields[name]
    return (lambda o: (get(o) is None, get(o) if get(o) is not None else "")), descending
