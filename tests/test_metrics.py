"""Metrics in one process: the bounded presence sets, the tick counter, the token rule."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.metrics.presence import SeenBuffer
from dashboard.metrics.worker import WorkerMetrics, kind_label
from dashboard.pipeline.worker import Worker
from tests import dashcb
from tests.events import incident, traffic


def value(text: str, sample: str, **labels: str) -> float | None:
    found = [s.value for family in text_string_to_metric_families(text)
             for s in family.samples
             if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None


def test_met001_presence_set_forgets_old_viewers_and_stays_bounded(client):
    seen = SeenBuffer(client, "t:screens", window_s=30)
    t0 = 1_800_000_000.0
    for i in range(50):
        seen.seen(f"viewer{i}", t0 + i * 0.01)
    assert seen.count(t0 + 1) == 50
    seen.seen("late", t0 + 100)
    assert seen.count(t0 + 100) == 1
    assert client.zcard("t:screens") == 1  # the 50 old ones are gone, not just uncounted
    assert 0 < client.ttl("t:screens") <= 60


def test_met005_a_new_viewer_counts_at_once_in_every_process(client):
    """Two web processes share one set: a viewer one of them sees for the first time is
    counted by the other at once, not up to a flush interval later (obs002 saw 0)."""
    first = SeenBuffer(client, "t:replays", window_s=60)
    second = SeenBuffer(client, "t:replays", window_s=60)
    t0 = 1_800_000_000.0
    assert first.count(t0) == 0  # a scrape served by the first process: it just flushed
    first.seen("viewer-a", t0 + 0.1)
    assert second.count(t0 + 0.2) == 1
    writes_before = client.zscore("t:replays", "viewer-a")
    first.seen("viewer-a", t0 + 1)  # seen again soon: throttled, no write of its own
    assert client.zscore("t:replays", "viewer-a") == writes_before


def test_met002_ticks_and_screens_connected_on_metrics(settings, client):
    app = create_app(settings).server  # no accounts: /metrics is open
    screens = [app.test_client(), app.test_client()]
    for http in screens:
        http.get("/")  # gives the browser its viewer cookie
    for http in [*screens, screens[0]]:
        response = dashcb.post(http, "tick-sig.data", {"tick.n_intervals": 1, "url.search": ""},
                               ["tick.n_intervals"])
        assert response.status_code == 200
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert value(text, "citybrain_update_ticks_total") == 3
    assert value(text, "citybrain_screens_connected") == 2
    assert value(text, "citybrain_http_request_duration_seconds_count",
                 route="/_dash-update-component", status="200") == 3


def test_met003_metrics_404_with_accounts_and_no_token_configured(settings, client, geography):
    UserStore(client, settings.state_prefix, geography).add("boss", "city", "pw-123456789")
    app = create_app(settings.replace(secret_key="k" * 32)).server
    assert app.test_client().get("/metrics", headers={"Authorization": "Bearer "}).status_code \
        == 404
    token_app = create_app(settings.replace(secret_key="k" * 32, metrics_token="t0k")).server
    http = token_app.test_client()
    assert http.get("/metrics", headers={"Authorization": "Bearer t0k"}).status_code == 200
    assert http.get("/metrics", headers={"Authorization": "Bearer t0"}).status_code == 404


def test_met004_worker_counts_by_kind_with_bounded_labels(settings, client, geography):
    metrics = WorkerMetrics(settings, client)
    for event in (incident("A", event_id="ops010"), traffic("S1", 30, event_id="ops012"),
                  incident("A", event_id="ops010"),
                  {"event_id": "ops011", "kind": "made-up-kind-" + "x" * 40, "ts": "1"}):
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="m", metrics=metrics).work(burst=True)
    text = generate_latest(metrics.registry).decode()
    assert value(text, "citybrain_events_applied_total", kind="incident") == 1
    assert value(text, "citybrain_events_duplicate_total", kind="incident") == 1
    assert value(text, "citybrain_events_applied_total", kind="traffic") == 1
    assert value(text, "citybrain_events_duplicate_total", kind="traffic") is None
    dead = [s.labels for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "citybrain_events_dead_total"]
    assert dead and all(d["kind"] == "other" for d in dead)
    assert kind_label(b"traffic") == "traffic" and kind_label(None) == "other"


def test_met006_starting_the_worker_metrics_reads_no_stream(settings, client):
    """Registering the stream gauges asks Redis nothing (on a long stream it cost seconds);
    each scrape still reads them."""
    client.xadd(settings.stream, incident("A", event_id="met006"))
    client.xgroup_create(settings.stream, settings.group, id="0")
    client.config_resetstat()
    metrics = WorkerMetrics(settings, client)
    asked = set(client.info("commandstats"))
    assert not asked & {"cmdstat_xlen", "cmdstat_xinfo", "cmdstat_xrange",
                        "cmdstat_hgetall"}, asked
    text = generate_latest(metrics.registry).decode()
    assert value(text, "citybrain_consumer_lag") == 1
    assert "cmdstat_xinfo" in client.info("commandstats")
