"""The HTTP intake: `POST /api/v1/events` for producers that do not speak Redis.

The body is a JSON array of up to `MAX_EVENTS` events in the contract's fields
(docs/events.md; numbers may be JSON numbers), sent with `Authorization: Bearer
<token>` (`citybrain producers add`). Each event gets the worker's own check
(`pipeline.validate.check_batch`: the contract, datum conversion, the point's
area) plus the token's limits (kinds, area), and an answer in the same order:
`accepted` with its stream id, or `rejected` with the dead-letter reason (a
rejected event is also copied to the dead-letter stream, as the worker would).
The accepted ones are XADDed by one script that also remembers each
`event_id` for `CITYBRAIN_DEDUP_TTL_S`, so a replayed batch is added once (the
replay is answered `accepted` with the first stream id and `duplicate: true`).
A body over `CITYBRAIN_INTAKE_MAX_BYTES` or with more than `MAX_EVENTS` events
is refused whole (413); a token over `CITYBRAIN_INTAKE_RATE` events a minute
gets 429 with `Retry-After`. Every request is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import orjson
import redis

from dashboard.auth.guard import access, client_address
from dashboard.auth.identity import User
from dashboard.geography import Geography
from dashboard.pipeline.contract import Rejection
from dashboard.pipeline.validate import Located, check_batch, dead_letter
from dashboard.producers import Producer, ProducerStore
from dashboard.services import Services
from dashboard.settings import Settings

intake = flask.Blueprint("intake", __name__)

ROUTE = "/api/v1/events"
MAX_EVENTS = 1000
RATE_WINDOW_S = 60

# KEYS: the stream, then each row's remembered-id key; ARGV: ttl s, JSON rows [{"f": [k, v, ..]}]
_ADD = """
local ttl = tonumber(ARGV[1])
local rows = cjson.decode(ARGV[2])
local out = {}
for i, row in ipairs(rows) do
  local seen = redis.call('GET', KEYS[i + 1])
  if seen then
    out[i] = {0, seen}
  else
    local id = redis.call('XADD', KEYS[1], '*', unpack(row.f))
    redis.call('SET', KEYS[i + 1], id, 'EX', ttl)
    out[i] = {1, id}
  end
end
return out
"""

# KEYS: the token's counter; ARGV: events, limit, window s. 0, or the seconds to wait.
_RATE = """
local n, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count = redis.call('INCRBY', KEYS[1], n)
if count == n then redis.call('EXPIRE', KEYS[1], window) end
if count <= limit then return 0 end
redis.call('DECRBY', KEYS[1], n)
local ttl = redis.call('TTL', KEYS[1])
if ttl < 1 then return window end
return ttl
"""


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes (its `{tag}`, or the whole key)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


@dataclass(frozen=True)
class Intake:
    """What the route needs, built once per process."""

    settings: Settings
    client: redis.Redis
    geography: Geography
    producers: ProducerStore
    add_script: Any
    rate_script: Any
    clock: Callable[[], float] = time.time  # validation's "now" (events too far ahead)

    @classmethod
    def build(cls, services: Services) -> Intake:
        """From the process's services."""
        client, settings = services.client, services.settings
        return cls(settings, client, services.geography,
                   ProducerStore(client, settings.state_prefix, services.geography),
                   client.register_script(_ADD), client.register_script(_RATE))

    def seen_key(self, event_id: str) -> str:
        """Where an accepted `event_id` is remembered (in the stream's cluster slot)."""
        return f"{{{hash_tag(self.settings.stream)}}}:intake:{event_id}"

    def wait_s(self, producer: Producer, events: int) -> int:
        """0 when the token may send these events now, else the seconds until it may."""
        key = f"{self.settings.state_prefix}intake_rate:{producer.name}"
        return int(self.rate_script(keys=[key], args=[max(events, 1), self.settings.intake_rate,
                                                       RATE_WINDOW_S]))

    def add(self, rows: list[dict[str, str]]) -> list[tuple[bool, str]]:
        """XADD the events not seen before; per event: whether it is new, its stream id."""
        if not rows:
            return []
        keys = [self.settings.stream, *(self.seen_key(r["event_id"]) for r in rows)]
        payload = orjson.dumps([{"f": [x for pair in r.items() for x in pair]} for r in rows])
        answers = self.add_script(keys=keys, args=[self.settings.dedup_ttl_s, payload])
        return [(bool(new), entry_id.decode()) for new, entry_id in answers]


def install(server: flask.Flask, services: Services) -> None:
    """Hang the intake on the app and register its route."""
    server.extensions["citybrain_intake"] = Intake.build(services)
    server.register_blueprint(intake)


def fields_of(item: Any) -> dict[str, str] | Rejection:
    """A JSON event as the string fields of a stream entry (numbers as their text)."""
    if not isinstance(item, dict):
        return Rejection("bad_value", "an event must be a JSON object")
    fields: dict[str, str] = {}
    for name, value in item.items():
        if isinstance(value, str):
            fields[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fields[name] = repr(value)
        else:
            return Rejection("bad_value", f"field {name[:40]!r} must be a string or a number")
    return fields


def token_refusal(producer: Producer, located: Located, geography: Geography
                  ) -> Rejection | None:
    """Why the token may not send this valid event, if it may not."""
    event = located.event
    if not producer.allows_kind(event.kind):
        return Rejection("kind_not_allowed", f"this token may not send {event.kind} events")
    if producer.area is not None and (
            not located.area or producer.area not in geography.chain(located.area)):
        return Rejection("outside_area", f"this token may only send events located in "
                         f"{producer.area} (with lon/lat or area_id)")
    return None


def _answer(body: dict[str, Any], status: int, **headers: str) -> flask.Response:
    response = flask.jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _audit(who: Producer | None, action: str, detail: str) -> None:
    user = None if who is None else User(f"producer:{who.name}", "producer",
                                         who.area or access().geography.root_id)
    access().audit.record(user, client_address(), action, who.name if who else "", detail,
                          area=(who.area or "") if who else "")


def _body(limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (read no further)."""
    length = flask.request.content_length
    if length is not None and length > limit:
        return None
    body = flask.request.stream.read(limit + 1)
    return None if len(body) > limit else body


@intake.post(ROUTE)
def receive() -> flask.Response:
    """Check, answer per event and append a producer's batch of events."""
    svc: Intake = flask.current_app.extensions["citybrain_intake"]
    header = flask.request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    producer = svc.producers.authenticate(token) if token else None
    if producer is None:
        _audit(None, "intake_refused", "missing, unknown or revoked token")
        return _answer({"error": "bad_token"}, 401, **{"WWW-Authenticate": "Bearer"})
    body = _body(svc.settings.intake_max_bytes)
    if body is None:
        _audit(producer, "intake_refused", "body too large")
        return _answer({"error": "too_large", "max_bytes": svc.settings.intake_max_bytes}, 413)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _audit(producer, "intake_refused", "bad JSON")
        return _answer({"error": "bad_json", "detail": str(exc)[:200]}, 400)
    if not isinstance(items, list):
        _audit(producer, "intake_refused", "not a JSON array")
        return _answer({"error": "bad_json", "detail": "the body must be a JSON array"}, 400)
    if len(items) > MAX_EVENTS:
        _audit(producer, "intake_refused", f"{len(items)} events")
        return _answer({"error": "too_many_events", "max_events": MAX_EVENTS}, 413)
    wait = svc.wait_s(producer, len(items))
    if wait:
        _audit(producer, "intake_refused", "rate limit")
        return _answer({"error": "rate_limited", "retry_after_s": wait}, 429,
                       **{"Retry-After": str(wait)})
    results = process(svc, producer, items)
    counts = {s: sum(r["status"] == s for r in results) for s in ("accepted", "rejected")}
    duplicates = sum(bool(r.get("duplicate")) for r in results)
    _audit(producer, "intake", f"accepted {counts['accepted'] - duplicates}, duplicate "
           f"{duplicates}, rejected {counts['rejected']}")
    return _answer({**counts, "duplicates": duplicates, "results": results}, 200)


def process(svc: Intake, producer: Producer, items: list[Any]) -> list[dict[str, Any]]:
    """Validate, dead-letter the rejected, add the accepted; one answer per item, in order."""
    converted = [fields_of(item) for item in items]
    raws = [{k.encode(): v.encode() for k, v in c.items()} for c in converted
            if not isinstance(c, Rejection)]
    checked = iter(check_batch(raws, svc.geography, int(svc.clock() * 1000),
                               svc.settings.max_future_s * 1000))
    verdicts: list[Located | Rejection] = []
    for c in converted:
        verdict = c if isinstance(c, Rejection) else next(checked)
        if isinstance(verdict, Located):
            verdict = token_refusal(producer, verdict, svc.geography) or verdict
        verdicts.append(verdict)
    added = iter(svc.add([c for c, v in zip(converted, verdicts, strict=True)
                          if isinstance(v, Located) and isinstance(c, dict)]))
    pipe = svc.client.pipeline(transaction=False)
    results: list[dict[str, Any]] = []
    for item, fields, verdict in zip(items, converted, verdicts, strict=True):
        event_id = fields.get("event_id") if isinstance(fields, dict) else None
        if isinstance(verdict, Located):
            new, entry_id = next(added)
            results.append({"event_id": event_id, "status": "accepted", "id": entry_id,
                            **({} if new else {"duplicate": True})})
            continue
        original = fields if isinstance(fields, dict) else {"raw": orjson.dumps(item)[:4096]
                                                            .decode("utf-8", "replace")}
        dead_letter(pipe, svc.settings, {k.encode(): v.encode() for k, v in original.items()},
                    verdict, dead_source=f"intake:{producer.name}".encode())
        results.append({"event_id": event_id, "status": "rejected", "reason": verdict.reason,
                        "detail": verdict.detail})
    if len(pipe):
        pipe.execute()
    return results
