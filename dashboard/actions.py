"""Acting on incidents: detail, and the actions (close, verify, reject, follow_up ...).

An action is checked here (role, scope, incident exists, valid fields, the incident's
status allows it, and who may verify: `CITYBRAIN_VERIFY`), then
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
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, NotFound

from dashboard.api import requested_moment
from dashboard.auth.guard import (
    access,
    client_address,
    current_user,
    in_scope,
    require_area,
)
from dashboard.auth.users import User
from dashboard.pipeline.contract import (
    ACTIONS,
    MAX_NOTE_CHARS,
    MAX_TITLE_CHARS,
    SATISFACTION,
    command_status,
)
from dashboard.services import Services, current
from dashboard.viewer import viewer_id

actions = flask.Blueprint("actions", __name__)


class NotVerifier(Forbidden):
    """403: the account may not verify (or reject) the incident (`CITYBRAIN_VERIFY`)."""


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
            "responsible": record.get("str") or services.geography.responsible(area),
            "reopen_count": int(record.get("nre") or 0),
            "resolved_by": record.get("rby") or None,
            "satisfaction": record.get("sat") or None,
            **({"trigger": risk_trigger(record["why"])} if record.get("why") else {}),
            **case_of(record), "history": orjson.loads(notes) if notes else []}


def case_of(record: dict[str, Any]) -> dict[str, Any]:
    """A case's reports (source, event id, time; earliest first) and sources (多源合并).

    `case` names the case a report was merged into (itself when it heads one).
    """
    reports = [{"incident_id": r["i"], "source": r.get("s") or "", "event_id": r["e"],
                "time": r["t"]} for r in record.get("rl") or ()]
    sources = sorted({r["source"] for r in reports if r["source"]}) or (
        [record["src"]] if record.get("src") else [])
    return {"case": record.get("case"), "split": bool(record.get("msp")),
            "reports": reports, "sources": sources}


def risk_trigger(why: dict[str, Any]) -> dict[str, Any]:
    """A risk work order's why: the area's level, score, top categories and indicators."""
    return {"level": why.get("lv"), "score": why.get("score"),
            "categories": [{"category": c["c"], "contribution": c["p"]}
                           for c in why.get("cats") or []],
            "indicators": [{"indicator": i["i"], "category": i["c"], "value": i["v"],
                            "contribution": i["p"]} for i in why.get("top") or []]}


@actions.get("/api/v1/incidents/<incident_id>")
def detail(incident_id: str) -> flask.Response:
    """One incident with its action history; with `?at=`, as it was at that moment."""
    services = current()
    moment = requested_moment()
    if moment is None:
        return flask.jsonify(with_report_titles(services, incident_record(services,
                                                                            incident_id)))
    record = services.replayer.read_at(  # read under the replay's lock
        viewer_id(), moment,
        lambda past: stored_incident(services.client, past.state_prefix, incident_id))
    return flask.jsonify(decode_incident(services, incident_id, *record))


def with_report_titles(services: Services, record: dict[str, Any]) -> dict[str, Any]:
    """The record with each of its reports' titles (their own records; one HMGET).

    A report placed outside the user's scope (a merge across a street's border) shows
    no title and is marked `outside`.
    """
    reports = record["reports"]
    if len(reports) > 1:
        raws = services.client.hmget(services.settings.state_prefix + "inc",
                                     [r["incident_id"] for r in reports])
        user = current_user()
        for report, raw in zip(reports, raws, strict=True):
            stored = orjson.loads(raw) if raw else {}
            area = stored.get("area") or services.geography.root_id
            report["outside"] = not in_scope(user, area, services.geography)
            report["title"] = "" if report["outside"] else stored.get("title", "")
    return record


def check_verifier(services: Services, user: User, record: dict[str, Any]) -> None:
    """403 unless `user` may verify or reject this resolved incident (`CITYBRAIN_VERIFY`).

    `other`: any account but the one that resolved it; `up`: also an account whose scope
    strictly holds the resolver's (the resolver unknown: the incident's street). In the
    open demo mode (no accounts) there is no one else to ask: anyone verifies.
    """
    rule = services.settings.verify
    if rule == "off" or access().open_mode():
        return
    resolver = record.get("resolved_by")
    if resolver and resolver == user.name:
        raise NotVerifier("a different account must verify what this account resolved")
    if rule == "up":
        known = access().cache.users().get(resolver or "")
        below = known.scope if known else record["responsible"]
        geography = services.geography
        if user.scope == below or below not in geography.areas or (
                user.scope not in geography.chain(below)):
            raise NotVerifier("verification needs an account one level up from the resolver")


def check_split(services: Services, record: dict[str, Any], report: str) -> None:
    """400/409 unless `report` is one of this merged case's reports; 403 outside the scope.

    The head may be split off too: the next earliest report then heads the rest.
    """
    if record["case"] != record["incident_id"] or len(record["reports"]) < 2:
        raise Conflict("only a case of several reports can be split")
    if report not in {r["incident_id"] for r in record["reports"]}:
        raise BadRequest("report must be one of the case's reports")
    incident_record(services, report)  # the report's own place is in scope too


def perform_action(services: Services, user: User, incident_id: str, action: Any,
                   department: str = "", note: str = "", address: str = "?",
                   reason: str = "", satisfaction: str = "",
                   report: str = "") -> dict[str, str]:
    """Check and write one action to the command stream, and audit it; the command written.

    The single server-side path of the REST route and the screen: the role, the scope
    (`incident_record` answers 403 outside it), the action and its fields, whether the
    incident's status allows it and who may verify are all checked here, whatever the
    caller sent.
    """
    if not user.can_act:
        raise Forbidden("this account may only look")
    record = incident_record(services, incident_id)  # exists, and in scope
    area = record["area"]
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    department, note = str(department or ""), str(note or "")
    reason, satisfaction = str(reason or ""), str(satisfaction or "")
    if action == "dispatch" and department not in services.settings.departments:
        raise BadRequest("department must be one of CITYBRAIN_DEPARTMENTS")
    if len(note) > MAX_NOTE_CHARS or len(department) > MAX_TITLE_CHARS or (
            len(reason) > MAX_NOTE_CHARS):
        raise BadRequest("note is too long")
    if action in ("verify", "reject"):
        if record["status"] != "resolved":
            raise Conflict(f"only a resolved incident can be verified or rejected "
                           f"(it is {record['status']})")
        check_verifier(services, user, record)
        if action == "reject" and not reason.strip():
            raise BadRequest("a rejection needs a reason")
    if action == "follow_up":
        if record["source"] != "hotline":
            raise BadRequest("follow-up is for incidents from the hotline")
        if record["status"] not in ("resolved", "closed"):
            raise Conflict("follow-up comes after the incident is resolved or closed")
        if satisfaction not in SATISFACTION:
            raise BadRequest(f"satisfaction must be one of {', '.join(SATISFACTION)}")
    report = str(report or "")
    if action == "split":
        check_split(services, record, report)
    command = {
        "command_id": f"cmd-{uuid.uuid4().hex}", "action": action,
        "incident_id": incident_id, "user": user.name, "role": user.role,
        "address": address, "v": "1",
        "ts": datetime.fromtimestamp(time.time(), services.settings.zone).isoformat(),
    }
    status = command_status(action, services.settings.verify != "off",
                            services.settings.followup_reopens, satisfaction)
    if status:
        command["status"] = status  # for upstream systems; the worker decides the same way
    if department:
        command["department"] = department
    if reason:
        command["reason"] = reason
    if satisfaction:
        command["satisfaction"] = satisfaction
    if report:
        command["report"] = report
    if note:
        command["note" if action != "close" else "result"] = note
    # Audited first: when the audit cannot be written the action is refused (503).
    detail = " ".join(x for x in (department, satisfaction, report, reason, note) if x)
    access().audit.record(user, address, action, incident_id, detail, area=area, required=True)
    entry_id = services.client.xadd(services.settings.command_stream, command)
    return {**command, "entry_id": entry_id.decode()}


@actions.post("/api/v1/incidents/<incident_id>/actions")
def act(incident_id: str) -> flask.Response:
    """Acknowledge, dispatch, note, close, verify, reject, follow up or split, in scope."""
    body = flask.request.get_json(silent=True) or {}
    command = perform_action(current(), current_user(), incident_id, body.get("action"),
                             body.get("department") or "",
                             body.get("note") or body.get("result") or "", client_address(),
                             body.get("reason") or "", body.get("satisfaction") or "",
                             body.get("report") or "")
    return flask.jsonify({"accepted": True, "command_id": command["command_id"],
                          "entry_id": command["entry_id"]}), 202  # type: ignore[return-value]
