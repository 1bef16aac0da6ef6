"""Log lines: JSON with the request's context, text by default."""

from __future__ import annotations

import io
import json
import logging

import flask

from dashboard.logs import handler


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    h = handler(fmt)
    h.setStream(out)
    logger = logging.getLogger(f"test.logs.{fmt}")
    logger.handlers[:] = [h]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_log001_json_line_carries_the_request_context():
    app = flask.Flask(__name__)
    logger, out = capture("json")

    @app.get("/api/v1/areas/<area_id>")
    def area(area_id: str) -> str:
        flask.g.request_id = "rid-1"
        flask.g.user = type("U", (), {"name": "xuhui"})()
        logger.info("asked for %s", area_id, extra={"status": 403})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
        return "ok"

    app.test_client().get("/api/v1/areas/310104?area_id=310115&token=SECRET-TOKEN")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "asked for 310104" and first["status"] == 403
    assert first["request_id"] == "rid-1" and first["user"] == "xuhui"
    assert first["route"] == "/api/v1/areas/<area_id>" and first["area"] == "310115"
    assert {"time", "level", "process", "logger"} <= first.keys()
    assert "ValueError: boom" in second["exception"] and second["level"] == "ERROR"
    assert "SECRET-TOKEN" not in out.getvalue()


def test_log002_text_lines_outside_a_request():
    logger, out = capture("text")
    logger.warning("plain %s", "words")
    line = out.getvalue().strip()
    assert line.endswith("WARNING test.logs.text plain words")
    assert not line.startswith("{")


def test_log003_a_handler_writes_to_stderr_as_it_is_now(monkeypatch):
    """A server thread started under one test's captured stderr logs to the next one's."""
    first, later = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    h = handler("text")
    first.close()  # the capture it was made under is gone
    monkeypatch.setattr("sys.stderr", later)
    logger = logging.getLogger("test.logs.later")
    logger.handlers[:] = [h]
    logger.propagate = False
    logger.warning("still written")
    assert later.getvalue().rstrip().endswith("WARNING test.logs.later still written")
    assert "Logging error" not in later.getvalue()
