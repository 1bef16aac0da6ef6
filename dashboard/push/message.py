"""What a push message carries: the changed outputs, as small deltas, in a compact JSON.

A snapshot carries every output whole; an update only what changed since the topic's
last message, compared with the JSON its screens hold (`small_update`, `delta`). On
the wire (`compact`, undone by `expand` in `assets/push.js`): a Dash component
`{"props": P, "type": T, "namespace": N}` is `{"~": [T, n], **P}` (n: a short name
for Dash's own component packages), and a `Patch` is `{"~p": [[op, location, ...]]}`
with `a` (assign: value), `i` (insert: index, value) and `d` (delete).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import dash
import orjson
from dash import no_update
from plotly.io.json import to_json_plotly

from dashboard.geography import Geography
from dashboard.push.delta import PATCH, delta, diff
from dashboard.screen.frame import Frame
from dashboard.screen.mapfig import figure
from dashboard.screen.update import TICK_OUTPUTS
from dashboard.settings import Settings
from layers import LAYERS

ALL_LAYERS = tuple(layer.id for layer in LAYERS)
NAMESPACES = {"dash_html_components": "h", "dash_core_components": "d"}
OPS = {"Assign": "a", "Insert": "i", "Delete": "d"}
COMPONENT_KEYS = {"props", "type", "namespace"}


def compact(value: Any) -> Any:
    """The wire form of a JSON value: components and patches in their short forms."""
    if isinstance(value, list):
        return [compact(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == COMPONENT_KEYS and isinstance(value["props"], dict):
        ns = value["namespace"]
        return {"~": [value["type"], NAMESPACES.get(ns, ns)],
                **{k: compact(v) for k, v in value["props"].items()}}
    if PATCH in value and all(op["operation"] in OPS for op in value["operations"]):
        return {"~p": [_op(op) for op in value["operations"]]}
    return {k: compact(v) for k, v in value.items()}


def _op(op: dict[str, Any]) -> list[Any]:
    params = op["params"]
    short = OPS[op["operation"]]
    if short == "a":
        return [short, op["location"], compact(params["value"])]
    if short == "i":
        return [short, op["location"], params["index"], compact(params["value"])]
    return [short, op["location"]]


RETRY_MS = 1000  # how soon the browser's EventSource reconnects by itself


def encode(message_id: str, payload: dict[str, Any], retry: bool = False) -> bytes:
    """One server-sent event (`update`): one compact JSON line, deflated when large.

    Encoded once per topic and round, so once for all of the topic's screens.
    """
    data = wire(orjson.dumps(compact(as_json(payload))))
    head = f"retry: {RETRY_MS}\n" if retry else ""
    return f"{head}id: {message_id}\nevent: update\ndata: {data}\n\n".encode()


DEFLATE_FROM = 1024  # bytes of JSON above which a message is deflated


def wire(text: bytes) -> str:
    """The data line: the JSON itself, or `z` and its raw deflate in base64 (`unwire`)."""
    if len(text) <= DEFLATE_FROM:
        return text.decode()
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return "z" + base64.b64encode(packer.compress(text) + packer.flush()).decode()


def unwire(data: str) -> str:
    """The JSON text of a data line (what `assets/push.js` does with DecompressionStream)."""
    if data.startswith("z"):
        return zlib.decompress(base64.b64decode(data[1:]), -15).decode()
    return data


def props(outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The changed outputs as `{component id: {property: value}}` (what `set_props` takes)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in outputs.items():
        if value is no_update or name == "sig":
            continue
        target = TICK_OUTPUTS[name]
        out.setdefault(str(target.component_id), {})[target.component_property] = value
    return out


MAP = ("map-graph", "figure")


def as_json(value: Any) -> Any:
    """A value as the browser holds it (components and figures as plain JSON)."""
    return orjson.loads(to_json_plotly(value))


def map_data(figure: dict[str, Any]) -> list[dict[str, Any]]:
    """A figure's traces without `visible` (each screen keeps its own layer choice)."""
    return [{k: v for k, v in trace.items() if k != "visible"}
            for trace in as_json(figure["data"])]


def held_values(full: dict[str, dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """What a screen holds after a snapshot, by (component id, property)."""
    held: dict[tuple[str, str], Any] = {}
    for cid, values in full.items():
        for prop, value in values.items():
            if cid != "tick-sig":
                held[(cid, prop)] = map_data(value) if (cid, prop) == MAP else as_json(value)
    return held


def small_update(held: dict[tuple[str, str], Any], frame: Frame, outputs: dict[str, Any],
                 settings: Settings, geography: Geography) -> dict[str, dict[str, Any]] | None:
    """The changed outputs as small deltas against `held` (updated); None: send a snapshot.

    The map's traces are compared element by element (not layout: each screen keeps
    its own fit); a `Patch` the tick made (the trend) goes as it is.
    """
    out: dict[str, dict[str, Any]] = {}
    for cid, values in props(outputs).items():
        for prop, value in values.items():
            name = (cid, prop)
            if name == MAP:
                data = map_data(figure(frame, geography, ALL_LAYERS, settings.tile_url))
                old = held.get(MAP)
                if old is None or len(old) != len(data):
                    return None
                ops = [op for i, (a, b) in enumerate(zip(old, data, strict=True))
                       for op in trace_ops(a, b, i)]
                held[MAP] = data
                if not ops:
                    continue
                value = {PATCH: PATCH, "operations": ops}
            elif not isinstance(value, dash.Patch):
                new = as_json(value)
                if name in held and held[name] == new:
                    continue
                value = delta(held[name], new) if name in held else new
                held[name] = new
            out.setdefault(cid, {})[prop] = value
    return out


def trace_ops(old: dict[str, Any], new: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """One trace's changes, key by key (never the whole trace: its `visible` stays)."""
    ops = [op for key, value in new.items() for op in diff(old.get(key), value,
                                                           ["data", index, key])]
    ops.extend({"operation": "Delete", "location": ["data", index, key], "params": {}}
               for key in old if key not in new)
    return ops


def sig_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A clientside `Patch` bringing the browser's `tick-sig` from `old` to `new`."""
    operations: list[dict[str, Any]] = []
    for name, value in new.items():
        before = old.get(name)
        if before == value:
            continue
        if (name == "traces" and isinstance(before, list) and len(before) == len(value)
                and all(a.keys() == b.keys() for a, b in zip(before, value, strict=True))):
            for index, (a, b) in enumerate(zip(before, value, strict=True)):
                operations.extend({"operation": "Assign", "location": [name, index, k],
                                   "params": {"value": v}} for k, v in b.items() if a[k] != v)
        else:
            operations.append({"operation": "Assign", "location": [name],
                               "params": {"value": value}})
    return {"__dash_patch_update": "__dash_patch_update", "operations": operations}


