"""Small updates: the `Patch` operations turning the value a screen holds into the new one.

The push hub keeps, per topic, the JSON its screens hold for each output. When an
output changed, `delta` compares old and new and sends only what differs: a changed
element of a trace's array, an item prepended to the live feed, a number in a KPI
tile, as Dash's own clientside `Patch` operations (`Assign`, `Insert`, `Delete`),
which `dash_clientside.set_props` applies in the browser. When the operations would
be larger than the value, the value is sent whole.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

import orjson

PATCH = "__dash_patch_update"
Op = dict[str, Any]


def size(value: Any) -> int:
    """Bytes of a JSON value."""
    return len(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


def diff(old: Any, new: Any, location: list[Any] | None = None) -> list[Op]:
    """Operations that make `old` equal to `new` when applied in order."""
    where = location or []
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Op] = []
        for key, value in new.items():
            if key in old:
                ops.extend(diff(old[key], value, [*where, key]))
            else:
                ops.append(_assign([*where, key], value))
        ops.extend({"operation": "Delete", "location": [*where, key], "params": {}}
                   for key in old if key not in new)
        return _smaller(ops, where, new)
    if isinstance(old, list) and isinstance(new, list):
        return _smaller(_list_ops(old, new, where), where, new)
    return [_assign(where, new)]


MATCH_LIMIT = 250_000  # old x new elements above which a changed list is not matched


def _list_ops(old: list[Any], new: list[Any], where: list[Any]) -> list[Op]:
    """Element operations, applied back to front so each index is still the old one.

    The equal ends are skipped; a middle of the same length with few changes is
    compared element by element, otherwise matched (`SequenceMatcher`) when small
    enough, else assigned whole.
    """
    n, m = len(old), len(new)
    lo = 0
    while lo < min(n, m) and old[lo] == new[lo]:
        lo += 1
    hi = 0
    while hi < min(n, m) - lo and old[n - 1 - hi] == new[m - 1 - hi]:
        hi += 1
    a, b = old[lo:n - hi], new[lo:m - hi]
    if len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) * 4 <= len(a):
        return [op for k in range(len(a) - 1, -1, -1)
                for op in diff(a[k], b[k], [*where, lo + k])]
    if len(a) * len(b) > MATCH_LIMIT:
        return [_assign(where, new)]
    matcher = SequenceMatcher(None, [_key(x) for x in a], [_key(x) for x in b],
                              autojunk=False)
    ops: list[Op] = []
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1 - 1, -1, -1):
                ops.extend(diff(a[i1 + k], b[j1 + k], [*where, lo + i1 + k]))
            continue
        if tag in ("replace", "delete"):
            ops.extend({"operation": "Delete", "location": [*where, lo + i], "params": {}}
                       for i in range(i2 - 1, i1 - 1, -1))
        if tag in ("replace", "insert"):
            ops.extend({"operation": "Insert", "location": where,
                        "params": {"index": lo + i1 + k, "value": b[j1 + k]}}
                       for k in range(j2 - j1))
    return ops


def _key(value: Any) -> Any:
    """A hashable stand-in for a list element (scalars as they are)."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def _assign(location: list[Any], value: Any) -> Op:
    return {"operation": "Assign", "location": location, "params": {"value": value}}


def _smaller(ops: list[Op], where: list[Any], new: Any) -> list[Op]:
    """The operations, or one assignment of the whole value when that is smaller."""
    if len(ops) > 1 and size(ops) >= size(new):
        return [_assign(where, new)]
    return ops


def delta(old: Any, new: Any) -> Any:
    """What to send for an output: the new value, or a `Patch` of it when smaller."""
    ops = diff(old, new)
    if len(ops) == 1 and ops[0]["operation"] == "Assign" and not ops[0]["location"]:
        return new
    return {PATCH: PATCH, "operations": ops}


def apply(value: Any, patch: dict[str, Any]) -> Any:
    """Apply `Assign`/`Insert`/`Delete` operations as the browser does (for tests)."""
    root = {"v": orjson.loads(orjson.dumps(value))}
    for op in patch["operations"]:
        steps: list[Any] = ["v", *op["location"]]
        path, last = steps[:-1], steps[-1]
        parent: Any = root
        for step in path:
            parent = parent[step]
        if op["operation"] == "Assign":
            parent[last] = op["params"]["value"]
        elif op["operation"] == "Delete":
            del parent[last]
        elif op["operation"] == "Insert":
            parent[last].insert(op["params"]["index"], op["params"]["value"])
        else:
            raise ValueError(f"unknown operation {op['operation']}")
    return root["v"]
