"""Typed filters for store queries: built from column names and typed values, never pasted strings.

A `--where key=value` from the command line is parsed into a value of the column's Arrow type and
turned into a `lancedb.expr` expression, so `x' OR 1=1 --` is just a string that matches nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from lancedb.expr import Expr, col, lit

from mmfs.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def typed_value(schema: pa.Schema, column: str, raw: str) -> Any:
    """Parse `raw` as a value of `column`'s type in `schema`; unknown columns are refused."""
    if not _IDENTIFIER.match(column) or column not in schema.names:
        allowed = ", ".join(n for n in schema.names if _is_scalar(schema.field(n).type))
        raise ConfigError(f"cannot filter on '{column}'; columns: {allowed}")
    kind = schema.field(column).type
    try:
        if pa.types.is_integer(kind):
            return int(raw)
        if pa.types.is_floating(kind):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError("not finite")
            return value
        if pa.types.is_boolean(kind):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("not a boolean")
            return raw.lower() in ("true", "1")
    except ValueError as err:
        raise ConfigError(f"'{column}' takes a {kind} value, not {raw!r} ({err})") from None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return raw
    raise ConfigError(f"cannot filter on '{column}' of type {kind}")


def _is_scalar(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
    )


def equals_all(schema: pa.Schema, pairs: Iterable[tuple[str, str]]) -> Expr | None:
    """AND of `column == value` for each pair, with values typed by the schema; None if no pairs."""
    expr: Expr | None = None
    for column, raw in pairs:
        term = col(column) == lit(typed_value(schema, column, raw))
        expr = term if expr is None else (expr & term)
    return expr


def one_of(schema: pa.Schema, column: str, raw_values: Iterable[str]) -> Expr:
    """`column IN (values)` with each value typed by the schema; an empty list matches nothing."""
    values = [typed_value(schema, column, raw) for raw in raw_values]
    if not values:
        return lit(False)
    return col(column).isin([lit(v) for v in values])


def parse_where(items: Iterable[str]) -> list[tuple[str, str]]:
    """Split `key=value` command-line items (the value may itself contain '=')."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--where takes key=value, not {item!r}")
        pairs.append((key.strip(), value))
    return pairs


def sql_literal(value: Any) -> str:
    """A SQL literal for the few APIs that only take strings (delete): quotes doubled, finite."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError("non-finite numbers cannot be used in filters")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ConfigError(f"unsupported filter value type {type(value).__name__}")


def in_list(column: str, values: Iterable[Any]) -> str:
    """`column IN (...)` with a checked identifier and quoted literals, for string-only APIs."""
    if not _IDENTIFIER.match(column):
        raise ConfigError(f"invalid column name {column!r}")
    literals = [sql_literal(v) for v in values]
    if not literals:
        return "FALSE"
    return f"{column} IN ({', '.join(literals)})"
