"""OData v4 URL conventions the simulator understands: entity keys, `$filter` compiled to
SQL over the stored JSON, `$select` and `$orderby`.

`$filter` supports `eq ne gt ge lt le`, `and or not`, parentheses, `contains`,
`startswith`, `endswith`; literals: strings (`'O''Brien'`), numbers, `true false null`,
dates (`2026-11-30`), date-times (`2026-11-30T00:00:00Z`) and enum literals
(`Microsoft.Dynamics.DataEntities.NoYes'Yes'`, or the bare string `'Yes'`). String
comparisons ignore case and `eq '*abc*'` is a wildcard match, as in D365 (SQL Server's
collation and D365's own `*` wildcard).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .entities import DATE, DECIMAL, ENUM, INT, EntitySet


class ODataError(Exception):
    """A malformed URL or query option: answered as an OData 400."""


_TOKEN_RX = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<enum>[A-Za-z_][\w.]*'(?:[^']|'')*')
    | (?P<dtm>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfF]?)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)

COMPARISONS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass
class Tok:
    kind: str
    text: str


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RX.match(text, pos)
        if m is None or m.end() == pos:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        out.append(Tok(kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def unquote(s: str) -> str:
    return s[1:-1].replace("''", "'")


def utc_text(value: str) -> str:
    """A date-time literal as the stored form (UTC, seconds, `Z`)."""
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_sql(name: str) -> str:
    return f"json_extract(data,'$.{name}')"


class FilterCompiler:
    """Recursive descent over the tokens; emits a SQL expression and its parameters."""

    def __init__(self, es: EntitySet, text: str) -> None:
        self.es = es
        self.toks = tokenize(text)
        self.i = 0
        self.params: list[Any] = []

    def compile(self) -> tuple[str, list[Any]]:
        sql = self._or()
        if self.i != len(self.toks):
            raise ODataError(f"Syntax error: unexpected '{self.toks[self.i].text}'.")
        return sql, self.params

    # -- grammar -------------------------------------------------------------------
    def _peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> Tok:
        tok = self._peek()
        if tok is None:
            raise ODataError("Syntax error: the expression ends too early.")
        self.i += 1
        return tok

    def _word(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "word" and tok.text == word:
            self.i += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        tok = self._next()
        if tok.text != text:
            raise ODataError(f"Syntax error: expected '{text}', found '{tok.text}'.")

    def _or(self) -> str:
        parts = [self._and()]
        while self._word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._word("and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        if self._word("not"):
            return f"NOT ({self._not()})"
        return self._comparison()

    def _comparison(self) -> str:
        tok = self._peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            inner = self._or()
            self._expect(")")
            return f"({inner})"
        if tok is not None and tok.kind == "word" and tok.text in FUNCTIONS:
            return self._function()
        left = self._operand()
        op_tok = self._next()
        if op_tok.kind != "word" or op_tok.text not in COMPARISONS:
            raise ODataError(f"Syntax error: expected a comparison operator, found '{op_tok.text}'.")
        right = self._operand()
        if left[0] == "lit" and right[0] == "prop":
            left, right = right, left
            op_tok = Tok("word", {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op_tok.text, op_tok.text))
        if left[0] != "prop" or right[0] != "lit":
            raise ODataError("Only comparisons of a property with a literal are supported.")
        return self._compare(left[1], op_tok.text, right[1], right[2])

    def _operand(self) -> tuple[str, str, str]:
        tok = self._next()
        if tok.kind == "word" and tok.text in ("true", "false", "null"):
            return ("lit", tok.text, "keyword")
        if tok.kind == "word":
            if tok.text not in self.es.props:
                raise ODataError(f"Could not find a property named '{tok.text}' on type '{self.es.qualified_type}'.")
            return ("prop", tok.text, "")
        if tok.kind in ("str", "enum", "dtm", "date", "num"):
            return ("lit", tok.text, tok.kind)
        raise ODataError(f"Syntax error: unexpected '{tok.text}'.")

    def _function(self) -> str:
        name = self._next().text
        self._expect("(")
        prop = self._operand()
        self._expect(",")
        lit = self._operand()
        self._expect(")")
        if prop[0] != "prop" or lit[2] != "str":
            raise ODataError(f"{name} takes a property and a string literal.")
        value = unquote(lit[1]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = {"contains": f"%{value}%", "startswith": f"{value}%", "endswith": f"%{value}"}[name]
        self.params.append(pattern)
        return f"({field_sql(prop[1])} LIKE ? ESCAPE '\\')"

    # -- one comparison ----------------------------------------------------------------
    def _compare(self, name: str, op: str, lit: str, kind: str) -> str:
        prop = self.es.props[name]
        col = field_sql(name)
        sql_op = COMPARISONS[op]
        if kind == "keyword":
            if lit == "null":
                if op not in ("eq", "ne"):
                    raise ODataError("null only compares with eq or ne.")
                return f"({col} IS NULL)" if op == "eq" else f"({col} IS NOT NULL)"
            raise ODataError(f"The property '{name}' is not a Boolean.")
        if prop.type in (DECIMAL, INT):
            if kind != "num":
                raise ODataError(f"A numeric literal is needed to compare with '{name}'.")
            try:
                number = Decimal(lit.rstrip("mMdDfF"))
            except InvalidOperation as e:
                raise ODataError(f"Invalid number '{lit}'.") from e
            self.params.append(float(number))
            return f"(CAST({col} AS REAL) {sql_op} ?)"
        if prop.type == DATE:
            if kind == "date":
                self.params.append(lit)
                return f"(substr({col},1,10) {sql_op} ?)"
            if kind == "dtm":
                self.params.append(utc_text(lit))
                return f"({col} {sql_op} ?)"
            raise ODataError(f"A date or date-time literal is needed to compare with '{name}'.")
        if prop.type == ENUM:
            if kind == "enum":
                type_name, _, raw = lit.partition("'")
                value = unquote("'" + raw)
                if prop.enum and not type_name.endswith("." + prop.enum) and type_name != prop.enum:
                    raise ODataError(f"The enum type '{type_name}' does not match '{name}' ({prop.enum}).")
            elif kind == "str":
                value = unquote(lit)
            else:
                raise ODataError(f"An enum literal is needed to compare with '{name}'.")
            if value not in prop.choices:
                raise ODataError(f"The value '{value}' is not a member of the enum {prop.enum}.")
            self.params.append(value)
            return f"({col} {sql_op} ?)"
        if kind != "str":
            raise ODataError(f"A string literal is needed to compare with '{name}'.")
        value = unquote(lit)
        if op in ("eq", "ne") and "*" in value:
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            self.params.append(pattern)
            neg = "NOT " if op == "ne" else ""
            return f"({neg}{col} LIKE ? ESCAPE '\\')"
        self.params.append(value)
        return f"({col} {sql_op} ? COLLATE NOCASE)"


def compile_filter(es: EntitySet, text: str) -> tuple[str, list[Any]]:
    return FilterCompiler(es, text).compile()


def parse_select(es: EntitySet, text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in es.props:
            raise ODataError(f"Could not find a property named '{n}' on type '{es.qualified_type}'.")
    return names


def compile_orderby(es: EntitySet, text: str | None) -> str:
    if not text:
        return "seq"
    parts = []
    for item in text.split(","):
        bits = item.split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise ODataError(f"Syntax error in $orderby '{text}'.")
        name = bits[0]
        if name not in es.props:
            raise ODataError(f"Could not find a property named '{name}' on type '{es.qualified_type}'.")
        direction = "DESC" if len(bits) == 2 and bits[1].lower() == "desc" else "ASC"
        prop = es.props[name]
        col = field_sql(name)
        if prop.type in (DECIMAL, INT):
            col = f"CAST({col} AS REAL)"
        elif prop.type != DATE:
            col = f"{col} COLLATE NOCASE"
        parts.append(f"{col} {direction}")
    return ", ".join([*parts, "seq"])


_KEY_RX = re.compile(r"\s*(?:(?P<name>\w+)\s*=\s*)?(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*(?:,|$)")


def parse_key(es: EntitySet, text: str) -> dict[str, str]:
    """`(dataAreaId='uk01',CustomerAccount='C1')` (or `('C1')` for a one-field key) -> values."""
    pos = 0
    found: dict[str, str] = {}
    unnamed: list[str] = []
    while pos < len(text):
        m = _KEY_RX.match(text, pos)
        if m is None or m.end() == pos:
            raise ODataError(f"The key '({text})' is malformed.")
        raw = m.group("value")
        value = unquote(raw) if raw.startswith("'") else raw
        if m.group("name"):
            found[m.group("name")] = value
        else:
            unnamed.append(value)
        pos = m.end()
    if unnamed:
        if found or len(unnamed) != 1 or len(es.keys) != 1:
            raise ODataError(f"The key '({text})' does not name the key fields of {es.name}.")
        found = {es.keys[0]: unnamed[0]}
    if set(found) != set(es.keys):
        wanted = ",".join(es.keys)
        raise ODataError(f"The key of {es.name} is ({wanted}); '({text})' does not match it.")
    return found


def key_text(es: EntitySet, values: dict[str, Any]) -> str:
    """The canonical URL key of a record."""
    parts = []
    for k in es.keys:
        v = values.get(k)
        if es.props[k].type in (DECIMAL, INT):
            parts.append(f"{k}={canonical_number(v)}")
        else:
            parts.append(f"{k}='" + str(v).replace("'", "''") + "'")
    return ",".join(parts)


def canonical_number(value: Any) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def record_id(es: EntitySet, values: dict[str, Any]) -> str:
    """The stored id: key values joined, case-folded (D365 keys ignore case)."""
    parts = []
    for k in es.keys:
        v = values.get(k)
        parts.append(canonical_number(v) if es.props[k].type in (DECIMAL, INT) else str(v).lower())
    return "|".join(parts)
