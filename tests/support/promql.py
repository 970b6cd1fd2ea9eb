"""Just enough PromQL to evaluate paddock's counter alerts on two real scrapes.

`increase(x[w])` over a window that spans both scrapes is the counter's rise between them (no
resets happen within a test); `sum(...)` adds the series; a trailing comparison with a number
decides the alert. Anything else in an expression is refused rather than guessed at.
"""

from __future__ import annotations

import operator
import re

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_EXPR = re.compile(
    r"^\s*(?P<sum>sum\()?\s*increase\(\s*(?P<name>[a-zA-Z_:][\w:]*)\s*\[\w+\]\s*\)\s*(?(sum)\))\s*"
    r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-\d.e]+)\s*$"
)
_OPS = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def samples(exposition: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def alert_fires(expr: str, before: Samples, after: Samples) -> bool:
    """Whether `[sum(]increase(name[w])[)] OP number` is true between the two scrapes."""
    match = _EXPR.match(expr)
    if match is None:
        raise ValueError(f"not an expression this evaluator knows: {expr!r}")
    name = match["name"]
    rises = [value - before.get(key, 0.0) for key, value in after.items() if key[0] == name]
    if match["sum"]:
        rises = [sum(rises)]
    return any(_OPS[match["op"]](rise, float(match["value"])) for rise in rises)
