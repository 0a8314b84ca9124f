"""The `q` filter of NetSuite's record collection GET ("Record Collection Filtering"):
conditions `field OPERATOR value...` joined with AND / OR and grouped with parentheses,
operators by field type (EMPTY, IS, EQUAL, GREATER..., CONTAIN, START_WITH, END_WITH,
ANY_OF, BETWEEN, ON / BEFORE / AFTER..., each with a `_NOT` form)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([^\s()"\',\[\]]+)|[,\[\]])')
_CONNECTORS = {"AND", "OR"}
_UNARY = {"EMPTY"}
_COMPARE: dict[str, Callable[[Any, list[Any]], bool]] = {
    "IS": lambda v, a: v == a[0],
    "EQUAL": lambda v, a: v == a[0],
    "GREATER": lambda v, a: v is not None and v > a[0],
    "GREATER_OR_EQUAL": lambda v, a: v is not None and v >= a[0],
    "LESS": lambda v, a: v is not None and v < a[0],
    "LESS_OR_EQUAL": lambda v, a: v is not None and v <= a[0],
    "AFTER": lambda v, a: v is not None and v > a[0],
    "ON_OR_AFTER": lambda v, a: v is not None and v >= a[0],
    "BEFORE": lambda v, a: v is not None and v < a[0],
    "ON_OR_BEFORE": lambda v, a: v is not None and v <= a[0],
    "ON": lambda v, a: v == a[0],
    "BETWEEN": lambda v, a: v is not None and a[0] <= v <= a[1],
    "WITHIN": lambda v, a: v is not None and a[0] <= v <= a[1],
    "ANY_OF": lambda v, a: v in a,
    "CONTAIN": lambda v, a: isinstance(v, str) and a[0].lower() in v.lower(),
    "START_WITH": lambda v, a: isinstance(v, str) and v.lower().startswith(a[0].lower()),
    "END_WITH": lambda v, a: isinstance(v, str) and v.lower().endswith(a[0].lower()),
    "ENDWITH": lambda v, a: isinstance(v, str) and v.lower().endswith(a[0].lower()),
    "EMPTY": lambda v, a: v in (None, ""),
}
_ARITY = {"BETWEEN": 2, "WITHIN": 2}


class FilterError(ValueError):
    pass


def _tokens(q: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if m is None or m.end() == pos:
            if q[pos:].strip() == "":
                break
            raise FilterError(f"unexpected text at {q[pos : pos + 15]!r}")
        pos = m.end()
        lpar, rpar, dq, sq, word = m.groups()
        if lpar or rpar:
            out.append(lpar or rpar)
        elif dq is not None or sq is not None:
            out.append("\x00" + (dq if dq is not None else sq))  # a quoted value
        elif word:
            out.append(word)
    return out


def _value(kind: str, raw: str) -> Any:
    text = raw[1:] if raw.startswith("\x00") else raw
    if kind == "num":
        try:
            return float(text)
        except ValueError:
            raise FilterError(f"{text!r} is not a number") from None
    if kind == "bool":
        if text.lower() not in ("true", "false", "t", "f"):
            raise FilterError(f"{text!r} is not a boolean")
        return text.lower() in ("true", "t")
    if kind == "date":
        for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
        raise FilterError(f"{text!r} is not a date")
    return text


def _field_value(kind: str, record: Record, field: str) -> Any:
    v = record.get(field)
    if kind.startswith("ref:") or kind == "status":
        return str(v.get("id")) if isinstance(v, dict) and v.get("id") is not None else None
    if kind == "num" and v is not None:
        return float(v)
    if kind == "date" and isinstance(v, str):
        return v[:10]
    return v


def compile_filter(q: str, field: Callable[[str], tuple[str, str]]) -> Predicate:
    """A predicate over stored records; `field(name)` gives (field, kind) or raises."""
    toks = _tokens(q)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise FilterError("unexpected end of the query")
        pos += 1
        return toks[pos - 1]

    def condition() -> Predicate:
        name = take()
        if name in ("(", ")") or name.startswith("\x00"):
            raise FilterError(f"expected a field name, got {name!r}")
        fname, kind = field(name)
        op = take().upper()
        negate = (op.endswith("_NOT") and op != "EMPTY_NOT") or op == "EMPTY_NOT"
        base = op[: -len("_NOT")] if op.endswith("_NOT") else op
        if base not in _COMPARE:
            raise FilterError(f"unknown operator {op!r}")
        args: list[Any] = []
        if base not in _UNARY:
            while peek() is not None and peek() not in ("(", ")") and peek().upper() not in _CONNECTORS:  # type: ignore[union-attr]
                args.append(_value(kind, take()))
            want = _ARITY.get(base, 1)
            if (base != "ANY_OF" and len(args) != want) or not args:
                raise FilterError(f"{op} takes {want} value(s), got {len(args)}")
        test = _COMPARE[base]

        def pred(record: Record) -> bool:
            return test(_field_value(kind, record, fname), args) != negate

        return pred

    def term() -> Predicate:
        if peek() == "(":
            take()
            inner = expr()
            if take() != ")":
                raise FilterError("missing )")
            return inner
        return condition()

    def conjunction() -> Predicate:
        parts = [term()]
        while (peek() or "").upper() == "AND":
            take()
            parts.append(term())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def expr() -> Predicate:
        parts = [conjunction()]
        while (peek() or "").upper() == "OR":
            take()
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    result = expr()
    if pos != len(toks):
        raise FilterError(f"unexpected {toks[pos]!r}")
    return result
