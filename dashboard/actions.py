"""Acting on incidents: detail, and acknowledge / dispatch / note / close.

An action is checked here (role, scope, incident exists, valid fields), then
written to the command stream (`CITYBRAIN_COMMAND_STREAM`) for upstream
systems and for our own worker, which applies it to the state like any event,
and recorded in the audit log.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import flask
import orjson
from werkzeug.exceptions import BadRequest, Forbidden, NotFound

from dashboard.api import requested_moment
from dashboard.auth.guard import access, client_address, current_user, require_area
from dashboard.auth.users import User
from dashboard.pipeline.contract import ACTIONS, MAX_NOTE_CHARS, MAX_TITLE_CHARS
from dashboard.services import Services, current
from dashboard.viewer import viewer_id

actions = flask.Blueprint("actions", __name__)


def stored_incident(client: Any, prefix: str, incident_id: str) -> tuple[bytes | None,
                                                                          bytes | None]:
    """The incident's stored record and action history (raw), one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(prefix + "inc", incident_id)
    pipe.hget(prefix + "notes", incident_id)
    record, notes = pipe.execute()
    return record, notes


def incident_record(services: Services, incident_id: str,
                    prefix: str | None = None) -> dict[str, Any]:
    """The stored incident (404 if unknown), its area checked against the user's scope.

    `prefix` reads another state than the live one (a replay's scratch state).
    """
    return decode_incident(services, incident_id, *stored_incident(
        services.client, prefix or services.settings.state_prefix, incident_id))


def decode_incident(services: Services, incident_id: str, raw: bytes | None,
                    notes: bytes | None) -> dict[str, Any]:
    """An incident from its stored record and history (404 if none; 403 outside the scope)."""
    if not raw:
        raise NotFound(f"no incident {incident_id}")
    record = orjson.loads(raw)
    area = record.get("area") or services.geography.root_id
    require_area(area)
    return {"incident_id": incident_id, "area": area, "status": record.get("st"),
            "category": record.get("cat") or "unknown", "source": record.get("src", ""),
            "severity": int(record.get("sev") or 2), "title": record.get("title", ""),
            "department": record.get("dept", ""), "lon": record.get("lon"),
            "lat": record.get("lat"), "reported": record.get("rts"),
            "history": orjson.loads(notes) if notes else []}


@actions.get("/api/v1/incidents/<incident_id>")
def detail(incident_id: str) -> flask.Response:
    """One incident with its action history; with `?at=`, as it was at that moment."""
    services = current()
    moment = requested_moment()
    if moment is None:
        return flask.jsonify(incident_record(services, incident_id))
    record = services.replayer.read_at(  # read under the replay's lock
        viewer_id(), moment,
        lambda past: stored_incident(services.client, past.state_prefix, incident_id))
    return flask.jsonify(decode_incident(services, incident_id, *record))


def perform_action(services: Services, user: User, incident_id: str, action: Any,
                   department: str = "", note: str = "", address: str = "?") -> dict[str, str]:
    """Check and write one action to the command stream, and audit it; the command written.

    The single server-side path of the REST route and the screen: the role, the scope
    (`incident_record` answers 403 outside it), the action and its fields are all
    checked here, whatever the caller sent.
    """
    if not user.can_act:
        raise Forbidden("this account may only look")
    area = incident_record(services, incident_id)["area"]  # exists, and in scope
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    department, note = str(department or ""), str(note or "")
    if action == "dispatch" and department not in services.settings.departments:
        raise BadRequest("department must be one of CITYBRAIN_DEPARTMENTS")
    if len(note) > MAX_NOTE_CHARS or len(department) > MAX_TITLE_CHARS:
        raise BadRequest("note is too long")
    command = {
        "command_id": f"cmd-{uuid.uuid4().hex}", "action": action,
        "incident_id": incident_id, "user": user.name, "role": user.role,
        "address": address, "v": "1",
        "ts": datetime.fromtimestamp(time.time(), services.settings.zone).isoformat(),
    }
    if department:
        command["department"] = department
    if note:
        command["note" if action != "close" else "result"] = note
    # Audited first: when the audit cannot be written the action is refused (503).
    access().audit.record(user, address, action, incident_id, f"{department} {note}".strip(),
                          area=area, required=True)
    entry_id = services.client.xadd(services.settings.command_stream, command)
    return {**command, "entry_id": entry_id.decode()}


@actions.post("/api/v1/incidents/<incident_id>/actions")
def act(incident_id: str) -> flask.Response:
    """Acknowledge, dispatch, note or close an incident in the user's scope."""
    body = flask.request.get_json(silent=True) or {}
    command = perform_action(current(), current_user(), incident_id, body.get("action"),
                             body.get("department") or "",
                             body.get("note") or body.get("result") or "", client_address())
    return flask.jsonify({"accepted": True, "command_id": command["command_id"],
                          "entry_id": command["entry_id"]}), 202  # type: ignore[return-value]
