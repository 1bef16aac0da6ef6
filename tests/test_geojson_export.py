"""GeoJSON out: areas with their numbers and open incidents, in scope, RFC 7946 (-k gjx)."""

from __future__ import annotations

import io
import time

import geopandas as gpd
import orjson
import pytest
import shapely
from shapely.geometry import shape

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from tests.events import PUDONG_POINT, XUHUI_POINT, incident, now_ms, traffic
from tests.test_export import PASSWORD, SECRET, signed_in


@pytest.fixture
def app(settings, client, geography):
    store = UserStore(client, settings.state_prefix, geography)
    for name, role, scope in (("xuhui", "district", "310104"), ("boss", "city", None)):
        store.add(name, role, PASSWORD, scope)
    for event in (incident("X1", title="井盖缺失 <b>徐家汇</b>", severity="4"),
                  incident("X2", sla_minutes="1", ts=now_ms(-3600)),
                  incident("P1", point=PUDONG_POINT, title="浦东的事"),
                  traffic("S1", 20.0, 60.0, point=XUHUI_POINT)):
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="w").work(burst=True)
    return create_app(settings.replace(secret_key=SECRET)).server


def loaded(response) -> tuple[dict, gpd.GeoDataFrame]:
    """The document as JSON and as GeoPandas reads it (checked against RFC 7946 on the way)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/geo+json"
    document = orjson.loads(response.get_data())
    assert document["type"] == "FeatureCollection" and "crs" not in document
    frame = gpd.read_file(io.BytesIO(response.get_data()))
    assert frame.crs is None or frame.crs.equals("EPSG:4326")
    return document, frame


def test_gjx001_areas_with_their_numbers(app, geography):
    http = signed_in(app, "boss")
    document, frame = loaded(http.get("/api/v1/export/areas.geojson?area_id=310000"))
    assert sorted(frame["area_id"]) == sorted(geography.children("310000"))
    xuhui = frame.set_index("area_id").loc["310104"]
    assert xuhui["incidents_open"] == 2 and xuhui["incidents_overdue"] == 1
    assert xuhui["traffic_index"] == pytest.approx(3.0) and xuhui["traffic_level"] == "severe"
    assert xuhui["sensor_alarms"] == 0 and xuhui["risk_level"] == "normal"
    assert frame.set_index("area_id").loc["310115", "incidents_open"] == 1
    assert frame.geometry.is_valid.all()
    assert shapely.contains(xuhui.geometry, shapely.Point(*XUHUI_POINT))
    for feature in document["features"]:  # right-hand rule: exteriors counter-clockwise
        polygons = ([feature["geometry"]["coordinates"]]
                    if feature["geometry"]["type"] == "Polygon"
                    else feature["geometry"]["coordinates"])
        for rings in polygons:
            assert shapely.LinearRing(rings[0]).is_ccw
            assert all(not shapely.LinearRing(hole).is_ccw for hole in rings[1:])


def test_gjx002_a_level_inside_the_scope_only(app, geography):
    http = signed_in(app, "xuhui")
    _, frame = loaded(http.get("/api/v1/export/areas.geojson?level=street"))
    assert sorted(frame["area_id"]) == list(geography.descendants_at("310104", "street"))
    assert all(a.startswith("310104") for a in frame["area_id"])
    assert http.get("/api/v1/export/areas.geojson?area_id=310115").status_code == 403
    assert http.get("/api/v1/export/areas.geojson?area_id=310000").status_code == 403
    assert http.get("/api/v1/export/incidents.geojson?area_id=310115").status_code == 403
    assert http.get("/api/v1/export/areas.geojson?level=planet").status_code == 400
    assert http.get("/api/v1/export/areas.geojson?area_id=nowhere").status_code == 404
    assert app.test_client().get("/api/v1/export/areas.geojson").status_code == 401
    audit = signed_in(app, "boss").get("/api/v1/audit").get_json()
    assert any(e["action"] == "export" and e["user"] == "xuhui" and e["target"] == "310104"
               for e in audit)
    assert sum(e["action"] == "denied" and e["user"] == "xuhui" for e in audit) == 3


def test_gjx003_open_incidents_as_points(app):
    document, frame = loaded(signed_in(app, "xuhui").get("/api/v1/export/incidents.geojson"))
    assert sorted(frame["incident_id"]) == ["X1", "X2"]  # not Pudong's
    assert "浦东" not in orjson.dumps(document).decode()
    first = document["features"][0]
    assert first["id"] == "X1" and first["properties"]["title"] == "井盖缺失 <b>徐家汇</b>"
    assert shape(first["geometry"]).equals(shapely.Point(*XUHUI_POINT))
    late = frame.set_index("incident_id").loc["X2"]
    assert bool(late["overdue"]) and late["minutes_late"] > 50


def test_gjx004_a_past_moment(app, settings, client, geography):
    http = signed_in(app, "xuhui")
    time.sleep(0.01)  # the close arrives (stream ids are arrival times) after the reports
    closed = client.xadd(settings.stream, incident("X1", status="closed", point=None))
    Worker(settings, client, geography, name="w").work(burst=True)
    _, live = loaded(http.get("/api/v1/export/incidents.geojson"))
    assert list(live["incident_id"]) == ["X2"]
    just_before = int(closed.decode().split("-")[0]) - 1
    _, before = loaded(http.get(f"/api/v1/export/incidents.geojson?at={just_before}"))
    assert sorted(before["incident_id"]) == ["X1", "X2"]
    _, areas = loaded(http.get(f"/api/v1/export/areas.geojson?at={just_before}"))
    assert areas["incidents_open"].sum() == 2
    _, areas = loaded(http.get("/api/v1/export/areas.geojson"))
    assert areas["incidents_open"].sum() == 1
