"""The heap guard's beacon and its inline script, without a browser (run: pytest -k soa)."""

from __future__ import annotations

import logging

import pytest

from dashboard.app import create_app
from dashboard.screen.heap_guard import BEACON_URL, MAX_BODY, script
from dashboard.settings import Settings, SettingsError


def test_soa012_the_beacon_logs_who_and_how_much_and_takes_nothing_as_code(client, settings,
                                                                          caplog):
    """(`client`: a flushed database, so no accounts left by an earlier test.)"""
    http = create_app(settings).server.test_client()
    caplog.set_level(logging.WARNING, logger="dashboard.screen.heap_guard")
    sent = {"heap_mb": 1500.5, "ceiling_mb": 1024, "url": "/?area=310104\n<b>x</b>"}
    assert http.post(BEACON_URL, json=sent).status_code == 204
    assert http.post(BEACON_URL, data=b"not json").status_code == 204  # still logged
    assert http.post(BEACON_URL, data=b"x" * (MAX_BODY + 1)).status_code == 413
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "JS heap 1500.5 MB over the ceiling of 1024.0 MB" in lines[0]
    assert "'/?area=310104\\n<b>x</b>'" in lines[0]  # quoted: one log line, as text
    assert "JS heap None MB" in lines[1]


def test_soa013_the_ceiling_is_a_setting_and_0_turns_the_guard_off():
    assert Settings.load(env={}).heap_ceiling_mb == 1024
    assert Settings.load(env={"CITYBRAIN_HEAP_CEILING_MB": "0"}).heap_ceiling_mb == 0
    with pytest.raises(SettingsError, match="CITYBRAIN_HEAP_CEILING_MB"):
        Settings.load(env={"CITYBRAIN_HEAP_CEILING_MB": "-5"})
    assert "var CEILING_MB = 0," in script(0)
    assert "var CEILING_MB = 512.0, CHECK_MS = 10000" in script(512.0)
    assert "@" not in script(512.0).split("*/", 1)[1]  # every placeholder filled
