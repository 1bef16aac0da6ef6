"""Calling one of the screen's Dash callbacks over HTTP, as the browser's renderer does."""

from __future__ import annotations

from typing import Any


def _outputs(spec: str) -> list[dict[str, str]]:
    parts = spec.strip(".").split("...") if spec.startswith("..") else [spec]
    return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]


def post(http: Any, output: str, values: dict[str, Any], changed: list[str]) -> Any:
    """POST the callback that has `output` (e.g. "act-msg.children") with these values.

    `values` maps "id.property" to the value of an input or state (missing: None);
    `changed` lists the inputs that fired. Returns the test client's response.
    """
    deps = http.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if output in _outputs(d["output"]) or output in d["output"])

    def fill(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

    outputs = _outputs(dep["output"])
    body = {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": fill(dep["inputs"]), "state": fill(dep["state"]),
            "changedPropIds": changed}
    return http.post("/_dash-update-component", json=body)


def outputs(response: Any) -> dict[str, Any]:
    """The callback's answer as {"id.property": value} (no_update outputs are absent)."""
    if response.status_code == 204:
        return {}
    assert response.status_code == 200, response.data[:300]
    answer = response.get_json()["response"]
    return {f"{cid}.{prop}": value for cid, props in answer.items()
            for prop, value in props.items()}
