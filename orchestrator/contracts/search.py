"""The topology search grammar, shared by the API (server-side filter) and the UI (highlighting).

A query is a list of terms separated by spaces; a node matches when it matches EVERY term (AND; there is
no OR and no parentheses — two searches are clearer than one precedence rule). Empty query: every node.

    term     := ["-"] body                    "-" negates the term (only before a non-empty body)
    body     := compare | field | word
    compare  := METRIC OP NUMBER              cpu>80   memory>=1000000   connections=0
                METRIC = [A-Za-z_][A-Za-z0-9_]*   OP = >= | <= | != | > | < | =
                NUMBER = -?[0-9]+(\\.[0-9]+)?
    field    := FIELD ":" value               namespace:prod   host:"node 1"   app.kubernetes.io/name:web
                FIELD = [A-Za-z_][A-Za-z0-9_./-]*
    word     := value                         web
    value    := "..." (no escapes, may hold spaces)  |  characters without a double quote

Matching (all text comparisons are case-insensitive substring matches):
- word:    the node's label contains it.
- field:   `name` -> the label, `id` -> the id, any other field -> `metadata[field]`, the key compared
           case-insensitively (missing: no match).
- compare: `metrics[metric]` compared numerically (missing: no match).
A body that starts like a comparison but has no number after the operator (`cpu>high`) is an error, as
are unterminated or misplaced quotes and empty values; quote a word to search for such text (`"a=b"`).
Field and metric names are lower-cased in the AST.

`orchestrator/contracts/search_vectors.json` holds inputs with their AST or error and their matches on
sample nodes; tests/api/test_search.py and the UI's TypeScript tests both run every vector.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

MAX_QUERY_CHARS = 512
MAX_TERMS = 32

_COMPARE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|>|<|=)(.*)$", re.S)
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_./-]*):(.*)$", re.S)

Op = Literal[">", ">=", "<", "<=", "=", "!="]


class SearchError(ValueError):
    """A query that does not parse; the message says where."""


@dataclass(frozen=True)
class Word:
    value: str
    negate: bool = False
    type: Literal["word"] = "word"


@dataclass(frozen=True)
class FieldMatch:
    field: str
    value: str
    negate: bool = False
    type: Literal["field"] = "field"


@dataclass(frozen=True)
class Compare:
    metric: str
    op: Op
    value: float
    negate: bool = False
    type: Literal["compare"] = "compare"


Term = Word | FieldMatch | Compare


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    def to_json(self) -> dict[str, Any]:
        return {"terms": [asdict(t) for t in self.terms]}

    def matches(self, node: SearchableNode | Mapping[str, Any]) -> bool:
        return all(_term_matches(t, node) for t in self.terms)


class SearchableNode(Protocol):
    id: str
    label: str
    metadata: Mapping[str, str]
    metrics: Mapping[str, float]


def _tokens(query: str) -> list[str]:
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    quote_at = 0
    for i, ch in enumerate(query):
        if ch == '"':
            quoted = not quoted
            quote_at = i
            current.append(ch)
        elif ch.isspace() and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if quoted:
        raise SearchError(f"unterminated quote at position {quote_at + 1}")
    if current:
        tokens.append("".join(current))
    return tokens


def _value(text: str, token: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"' and '"' not in text[1:-1]:
        text = text[1:-1]
    elif '"' in text:
        raise SearchError(f"{token}: a quote may only enclose a whole value")
    if not text:
        raise SearchError(f"{token}: empty value")
    return text


def parse(query: str) -> Query:
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"the search is longer than {MAX_QUERY_CHARS} characters")
    terms: list[Term] = []
    for token in _tokens(query):
        negate = token.startswith("-") and len(token) > 1
        body = token[1:] if negate else token
        if m := _COMPARE.match(body):
            metric, op, number = m.groups()
            if not _NUMBER.match(number):
                raise SearchError(f"{token}: expected a number after {op!r}")
            terms.append(Compare(metric.lower(), op, float(number), negate))  # type: ignore[arg-type]
        elif m := _FIELD.match(body):
            terms.append(FieldMatch(m.group(1).lower(), _value(m.group(2), token), negate))
        else:
            terms.append(Word(_value(body, token), negate))
    if len(terms) > MAX_TERMS:
        raise SearchError(f"more than {MAX_TERMS} terms")
    return Query(tuple(terms))


def _get(node: SearchableNode | Mapping[str, Any], key: str) -> Any:
    return node.get(key) if isinstance(node, Mapping) else getattr(node, key, None)


def _term_matches(term: Term, node: SearchableNode | Mapping[str, Any]) -> bool:
    if isinstance(term, Word):
        hit = term.value.lower() in str(_get(node, "label") or "").lower()
    elif isinstance(term, FieldMatch):
        if term.field in ("name", "id"):
            text = _get(node, "label" if term.field == "name" else "id")
        else:
            text = _metadata(node, term.field)
        hit = text is not None and term.value.lower() in str(text).lower()
    else:
        value = (_get(node, "metrics") or {}).get(term.metric)
        hit = value is not None and _compare(float(value), term.op, term.value)
    return hit != term.negate


def _metadata(node: SearchableNode | Mapping[str, Any], field: str) -> str | None:
    metadata: Mapping[str, str] = _get(node, "metadata") or {}
    if field in metadata:
        return metadata[field]
    # Keys are compared case-insensitively (Kubernetes label keys may hold capitals).
    return next((v for k, v in metadata.items() if k.lower() == field), None)


def _compare(left: float, op: Op, right: float) -> bool:
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == "=":
        return left == right
    return left != right
