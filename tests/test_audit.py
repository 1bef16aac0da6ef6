"""The durable audit trail: chained daily files, verify, no silent loss, paging, export."""

from __future__ import annotations

import csv
import io
import logging
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from dashboard.app import create_app
from dashboard.audit.chain import check_file, genesis, line_hash
from dashboard.audit.writer import AuditWriter
from dashboard.auth.audit import Audit
from dashboard.auth.users import User, UserStore
from dashboard.cli import main
from dashboard.pipeline.worker import Worker
from tests.events import incident

SECRET = "test-secret-" + "a" * 40
PASSWORD = "correct horse battery"
DAY_S = 86_400
# A fixed moment: 2031-03-04 10:00 in Shanghai. The audit clock is injected everywhere.
T0 = datetime(2031, 3, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
BOSS = User("boss", "city", "310000")
XUHUI = User("xuhui", "district", "310104")


class Clock:
    """A clock the test moves."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(settings):
    """The suite's settings in Shanghai's zone: the fixed moments above are Shanghai's."""
    return settings.replace(tz="Asia/Shanghai")


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def audit(settings, client, geography, clock):
    return Audit.build(settings.replace(audit_keep_days=100_000), client, geography, clock)


def folder(settings) -> Path:
    return Path(settings.audit_path)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_day(audit, clock, count=6):
    for i in range(count):
        clock.now += 60
        audit.record(XUHUI, "10.0.0.7", "note", f"X{i}", f"第{i}条", area="310104")


def test_aud001_each_entry_is_a_chained_fsynced_line_and_a_day_ends_sealed(
        audit, settings, clock, client):
    write_day(audit, clock, 3)
    (today,) = folder(settings).iterdir()
    assert today.name.startswith("audit-2031-03-04.")
    lines = lines_of(today)
    entries = [orjson.loads(raw) for raw in lines]
    assert [e["n"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == genesis(today.name)
    assert entries[1]["prev"] == line_hash(lines[0]) and entries[2]["prev"] == line_hash(lines[1])
    assert entries[2]["user"] == "xuhui" and entries[2]["detail"] == "第2条"
    assert check_file(today).ok and not check_file(today).sealed
    # The next day's first entry seals yesterday's file with its final hash.
    clock.now += DAY_S
    audit.record(BOSS, "10.0.0.8", "sign_in", "310000")
    seal = orjson.loads(lines_of(today)[-1])
    assert seal["seal"] is True and seal["n"] == 4 and seal["prev"] == line_hash(lines[2])
    assert check_file(today).ok and check_file(today).sealed
    assert len(list(folder(settings).iterdir())) == 2
    # Redis holds each file's last line (what verify checks an open file's end against).
    heads = client.hgetall(settings.state_prefix + "audit:heads:2031-03-04")
    assert heads[today.name.encode()].decode() == f"3 {line_hash(lines[2])}"


def _change(lines):
    entry = orjson.loads(lines[2])
    entry["user"] = "nobody"  # line 3 rewritten
    return [*lines[:2], orjson.dumps(entry), *lines[3:]], 3, "changed"


def _remove(lines):
    return [*lines[:3], *lines[4:]], 4, "removed"  # line 4 deleted


def _insert_forged(lines):
    forged = orjson.dumps({**orjson.loads(lines[1]), "user": "ghost", "n": 3,
                           "prev": line_hash(lines[1])})
    return [*lines[:2], forged, *lines[2:]], 3, "inserted"


def _insert_junk(lines):
    return [*lines[:4], b'{"user": "ghost"}', *lines[4:]], 5, "inserted"


def _insert_copy(lines):
    return [*lines[:2], lines[1], *lines[2:]], 3, "inserted"


def _change_last(lines):  # the last entry before the seal
    entry = orjson.loads(lines[-2])
    entry["detail"] = "nothing happened"
    return [*lines[:-2], orjson.dumps(entry), lines[-1]], len(lines) - 1, "changed"


def _remove_last(lines):
    return [*lines[:-2], lines[-1]], len(lines) - 1, "removed"


def _append_after_seal(lines):
    return [*lines, lines[0]], len(lines) + 1, "inserted after the seal"


@pytest.mark.parametrize("tamper", [_change, _remove, _insert_forged, _insert_junk,
                                    _insert_copy, _change_last, _remove_last,
                                    _append_after_seal])
def test_aud002_verify_names_the_changed_removed_or_inserted_line(
        tamper, audit, settings, clock, capsys, monkeypatch):
    write_day(audit, clock)
    clock.now += DAY_S
    write_day(audit, clock, 2)  # seals the first day's file
    first, second = sorted(folder(settings).iterdir())
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(folder(settings)))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert main(["audit", "verify"]) == 0
    assert "2 files, 9 lines, OK" in capsys.readouterr().out
    lines, line, what = tamper(lines_of(first))
    first.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{first}:{line}: {what}" in out
    assert str(second) not in out  # the other file is fine
    assert main(["audit", "verify", "--from", "2031-03-05"]) == 0  # only the later day


def test_aud003_open_file_cut_at_the_end_is_named_from_the_redis_head(
        audit, settings, clock, client, capsys, monkeypatch):
    write_day(audit, clock, 5)
    (today,) = folder(settings).iterdir()
    today.write_bytes(b"\n".join(lines_of(today)[:3]) + b"\n")  # the last two lines cut
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(folder(settings)))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert main(["audit", "verify"]) == 1
    assert f"{today}:4: removed (lines 4-5 are missing at the end" in capsys.readouterr().out


def test_aud004_old_days_are_deleted_after_keep_days(settings, client, geography, clock):
    audit = Audit.build(settings.replace(audit_keep_days=3), client, geography, clock)
    for _ in range(5):
        audit.record(BOSS, "10.0.0.8", "sign_in", "310000")
        clock.now += DAY_S
    audit.record(BOSS, "10.0.0.8", "sign_in", "310000")  # 2031-03-09
    days = sorted(p.name[6:16] for p in folder(settings).iterdir())
    assert days == ["2031-03-06", "2031-03-07", "2031-03-08", "2031-03-09"]


def test_aud005_several_writers_merge_by_time_and_each_chain_verifies(
        settings, client, geography, clock):
    web = Audit.build(settings, client, geography, clock)
    worker = Audit.build(settings, client, geography, clock)
    worker.writer.host = "worker_host"
    for i in range(6):
        clock.now += 1
        (web if i % 2 else worker).record(BOSS, "-", "sign_in", "310000", str(i))
    files = sorted(folder(settings).iterdir())
    assert len(files) == 2 and all(check_file(p).ok for p in files)
    entries = web.latest(10)
    assert [e["detail"] for e in entries] == ["5", "4", "3", "2", "1", "0"]


@pytest.fixture
def app(settings, client, geography):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    client.xadd(settings.stream, incident("X1"))
    Worker(settings, client, geography, name="w").work(burst=True)
    return create_app(settings.replace(secret_key=SECRET, audit_keep_days=100_000,
                                       audit_stream_maxlen=20)).server


def signed_in(app, name):
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def test_aud006_failed_audit_write_refuses_the_action_with_503(
        app, settings, client, caplog):
    http = signed_in(app, "xuhui")
    assert http.post("/api/v1/incidents/X1/actions", json={"action": "acknowledge"}
                     ).status_code == 202
    commands = client.xlen(settings.command_stream)
    # The audit folder becomes unusable (a plain file where the next day's file would go:
    # tests run as root, so a read-only folder would not stop them).
    audit = app.extensions["citybrain_access"].audit
    audit.writer.directory = folder(settings) / "blocked"
    audit.writer.directory.write_text("not a folder")
    audit.writer.close()  # the open file is sealed; the next entry needs a new file
    with caplog.at_level(logging.ERROR, logger="dashboard.auth.audit"):
        response = http.post("/api/v1/incidents/X1/actions",
                             json={"action": "note", "note": "现场"})
    assert response.status_code == 503
    assert "audit log cannot be written" in response.get_data(as_text=True)
    assert client.xlen(settings.command_stream) == commands  # nothing was sent
    assert any("audit write failed (file)" in r.getMessage() and "note X1" in r.getMessage()
               for r in caplog.records)
    assert audit.failures == 1
    assert http.get("/healthz").get_json()["audit_write_failures"] == 1


def test_aud007_api_pages_through_more_than_redis_holds_with_filters(
        app, settings, client, geography, clock):
    other = Audit.build(settings.replace(audit_keep_days=100_000, audit_stream_maxlen=20),
                        client, geography, clock)  # another process, with an injected clock
    for i in range(260):
        clock.now += 600  # ten minutes apart: about two days
        who = XUHUI if i % 2 else BOSS
        other.record(who, "10.0.0.9", "note" if i % 3 else "export",
                     "310104" if i % 2 else "310115", f"#{i}")
    assert client.xlen(settings.state_prefix + "audit") < 260  # Redis keeps far fewer
    boss = signed_in(app, "boss")
    seen, url, pages = [], "/api/v1/audit?limit=50&from=2031-03-01&to=2031-03-31", 0
    while url:
        response = boss.get(url)
        assert response.status_code == 200
        seen += response.get_json()
        link = response.headers.get("Link", "")
        url = link[1:link.index(">")] if link else ""
        pages += 1
    assert pages == 6
    details = [e["detail"] for e in seen]
    assert details == [f"#{i}" for i in reversed(range(260))]  # all, newest first, once
    assert len({f"{e['file']}:{e['n']}" for e in seen}) == 260
    only = boss.get("/api/v1/audit?user=xuhui&action=note&area=310104&limit=1000"
                    "&from=2031-03-05&to=2031-03-05").get_json()
    day5 = [e for e in seen if e["user"] == "xuhui" and e["action"] == "note"
            and datetime.fromtimestamp(e["ts"] / 1000, settings.zone).day == 5]
    assert only == day5 and len(only) > 10
    assert all(e["area"] == "310104" for e in only)
    assert boss.get("/api/v1/audit?area=310115&limit=1000").get_json()[0]["target"] == "310115"
    assert boss.get("/api/v1/audit?from=yesterday").status_code == 400
    assert boss.get("/api/v1/audit?before=nonsense").status_code == 400
    assert signed_in(app, "xuhui").get("/api/v1/audit").status_code == 403


def test_aud008_export_writes_csv_oldest_first(
        audit, settings, clock, capsys, monkeypatch, tmp_path):
    write_day(audit, clock, 3)
    clock.now += DAY_S
    audit.record(BOSS, "10.0.0.8", "note", "X9", "=HYPERLINK(\"http://x\")", area="310104")
    clock.now += DAY_S
    audit.record(BOSS, "10.0.0.8", "sign_in", "310000")
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(folder(settings)))
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--from", "2031-03-04", "--to", "2031-03-05",
                 "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["target"] for r in rows] == ["X0", "X1", "X2", "X9"]  # not the 6th's sign-in
    assert rows[0]["time"].startswith("2031-03-04T10:01:00") and rows[0]["user"] == "xuhui"
    assert rows[3]["detail"] == "'=HYPERLINK(\"http://x\")"  # never a formula
    assert rows[0]["file"].startswith("audit-2031-03-04.") and rows[0]["line"] == "1"
    assert main(["audit", "export", "--from", "2031-03-04", "--user", "boss"]) == 0
    printed = capsys.readouterr().out
    assert "X9" in printed and "X0" not in printed


def test_aud009_a_torn_last_line_after_a_crash_is_a_note_not_a_change(
        settings, clock, capsys, monkeypatch):
    writer = AuditWriter(folder(settings), settings.zone, 400, clock)
    writer.append({"ts": int(clock.now * 1000), "action": "sign_in"})
    (path,) = folder(settings).iterdir()
    with path.open("ab") as f:
        f.write(b'{"ts": 1, "act')  # the process died in the middle of a write
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(folder(settings)))
    assert main(["audit", "verify"]) == 0
    assert f"{path}:2: note: incomplete last line" in capsys.readouterr().out
    writer.close()  # a later entry, or a seal, after a torn line: the chain is broken there
    assert not check_file(path).ok



def test_aud010_a_deleted_folder_is_made_again_not_written_into_the_void(
        audit, settings, clock, caplog):
    write_day(audit, clock, 2)
    shutil.rmtree(folder(settings))
    with caplog.at_level(logging.ERROR, logger="dashboard.audit.writer"):
        audit.record(BOSS, "10.0.0.8", "sign_in", "310000", "after")
    (path,) = folder(settings).iterdir()
    assert [orjson.loads(raw)["detail"] for raw in lines_of(path)] == ["after"]
    assert check_file(path).ok
    assert any("was deleted while open" in r.getMessage() for r in caplog.records)


def test_aud011_a_whole_file_removed_is_named_from_the_redis_heads(
        audit, settings, clock, capsys, monkeypatch):
    write_day(audit, clock, 4)
    clock.now += DAY_S
    write_day(audit, clock, 1)
    first, _ = sorted(folder(settings).iterdir())
    first.unlink()
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(folder(settings)))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("CITYBRAIN_AUDIT_KEEP_DAYS", "100000")
    assert main(["audit", "verify"]) == 1
    assert f"{first}:1: removed (the whole file; Redis recorded 4 lines)" in \
        capsys.readouterr().out
