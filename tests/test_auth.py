"""Accounts, sessions and scope on the server (plain HTTP against the real app and Redis)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests

from dashboard.app import create_app
from dashboard.auth.throttle import FAILURES_ALLOWED
from dashboard.auth.users import UserError, UserStore
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import Settings, SettingsError
from tests.browser import live_server
from tests.events import PUDONG_POINT, incident

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"


@pytest.fixture
def store(client, settings, geography):
    return UserStore(client, settings.state_prefix, geography)


@pytest.fixture
def app(settings, store, client, geography):
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    store.add("wall1", "wall", None)
    client.xadd(settings.stream, incident("X1"))
    client.xadd(settings.stream, incident("P1", point=PUDONG_POINT, title="浦东的事"))
    Worker(settings, client, geography, name="w").work(burst=True)
    return create_app(settings.replace(secret_key=SECRET)).server


def sign_in(http, name="xuhui", password=PASSWORD):
    return http.post("/login", data={"name": name, "password": password, "next": "/"})


def test_acc001_open_demo_mode_without_accounts(settings, client):
    # `client`: a flushed database (no accounts left by the test run before this one)
    http = create_app(settings).server.test_client()
    me = http.get("/api/v1/me").get_json()
    assert me["open_demo"] is True and me["role"] == "city"
    assert http.get("/api/v1/summary").status_code == 200


def test_acc002_everything_needs_a_session(app):
    http = app.test_client()
    assert http.get("/api/v1/summary").status_code == 401
    assert http.post("/_dash-update-component", json={}).status_code == 401
    page = http.get("/?area=310104")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert http.get("/healthz").status_code == 200  # monitoring stays open
    assert http.get("/login").status_code == 200


def test_acc003_district_official_sees_only_their_district(app):
    http = app.test_client()
    response = sign_in(http)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    summary = http.get("/api/v1/summary").get_json()
    assert summary["area_id"] == "310104" and summary["incidents"]["open"] == 1
    assert http.get("/api/v1/summary?area_id=310101").status_code == 403
    assert http.get("/api/v1/summary?area_id=310000").status_code == 403
    assert http.get("/api/v1/areas/310115").status_code == 403
    body = http.get("/api/v1/areas/310000").get_data(as_text=True)
    assert "浦东" not in body and "310115" not in body
    detail = http.get("/api/v1/areas/310104").get_json()
    assert len(detail["children"]) == 13
    assert http.get("/api/v1/areas/310104-R0001").status_code == 200


def test_acc004_wrong_password_and_throttling(app):
    http = app.test_client()
    for _ in range(5):
        response = sign_in(http, password="wrong password!")
        assert response.status_code == 401
        assert "用户名或密码错误" in response.get_data(as_text=True)
    assert sign_in(http).status_code == 429  # even the right password, for a while
    assert http.get("/api/v1/summary").status_code == 401


def test_acc005_tampered_and_expired_cookies(app, settings):
    http = app.test_client()
    sign_in(http)
    cookie = http.get_cookie("citybrain_session")
    http.set_cookie("citybrain_session", cookie.value[:-3] + "abc")
    assert http.get("/api/v1/summary").status_code == 401
    short = create_app(settings.replace(secret_key=SECRET, session_hours=0.0001)).server
    http = short.test_client()
    sign_in(http)
    assert http.get("/api/v1/summary").status_code == 200
    time.sleep(0.5)
    assert http.get("/api/v1/summary").status_code == 401


def test_acc006_sign_out(app):
    http = app.test_client()
    sign_in(http)
    assert http.get("/api/v1/summary").status_code == 200
    http.get("/logout")
    assert http.get("/api/v1/summary").status_code == 401


def test_acc007_wall_token_and_revocation(app, store):
    token = store.issue_token("wall1")
    http = app.test_client()
    assert http.get(f"/api/v1/summary?token={token}").status_code == 200
    assert http.get("/api/v1/summary").status_code == 200  # the cookie it set
    assert http.get("/api/v1/me").get_json()["role"] == "wall"
    store.revoke_token("wall1")
    fresh = app.test_client()
    assert fresh.get(f"/api/v1/summary?token={token}").status_code == 401
    assert fresh.get("/api/v1/summary?token=guess").status_code == 401


def test_acc008_removed_user_loses_access(app, store):
    http = app.test_client()
    sign_in(http)
    store.remove("xuhui")
    app.extensions["citybrain_access"].cache.invalidate()
    assert http.get("/api/v1/summary").status_code == 401


def test_acc009_denied_attempts_are_audited_for_city_operators(app):
    http = app.test_client()
    sign_in(http)
    http.get("/api/v1/summary?area_id=310101")
    assert http.get("/api/v1/audit").status_code == 403
    boss = app.test_client()
    sign_in(boss, "boss")
    entries = boss.get("/api/v1/audit").get_json()
    denied = [e for e in entries if e["action"] == "denied"]
    assert denied and denied[0]["user"] == "xuhui" and denied[0]["target"] == "310101"
    assert any(e["action"] == "sign_in" and e["user"] == "xuhui" for e in entries)


def test_acc010_no_start_with_accounts_but_no_secret(settings, store):
    store.add("someone", "city", PASSWORD)
    with pytest.raises(SettingsError, match="CITYBRAIN_SECRET_KEY"):
        create_app(settings)


def test_acc011_user_rules(store):
    with pytest.raises(UserError, match="district id"):
        store.add("a", "district", PASSWORD, "310104-S01")
    with pytest.raises(UserError, match="street id"):
        store.add("b", "street", PASSWORD, "310104")
    with pytest.raises(UserError, match="at least"):
        store.add("c", "city", "short")
    store.add("d", "street", PASSWORD, "310104-S01")
    with pytest.raises(UserError, match="exists"):
        store.add("d", "city", PASSWORD)
    assert store.verify("d", PASSWORD).scope == "310104-S01"
    assert store.verify("d", "nope") is None and store.verify("nobody", PASSWORD) is None
    stored = store.client.hget(store.key, "d").decode()
    assert PASSWORD not in stored and "$argon2id$" in stored


def test_acc012_login_redirect_is_never_off_site(app):
    http = app.test_client()
    response = http.post("/login", data={"name": "xuhui", "password": PASSWORD,
                                         "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"


SSO = {"sso_header": "X-Remote-User", "trusted_proxies": Settings.load(
    env={"CITYBRAIN_TRUSTED_PROXIES": "127.0.0.1, 10.9.0.0/16"}).trusted_proxies}


@pytest.fixture
def sso_app(app, settings):
    return create_app(settings.replace(secret_key=SECRET, **SSO)).server


def test_acc013_single_sign_on_header_from_the_trusted_proxy(sso_app):
    proxy = sso_app.test_client()  # the test client's address is 127.0.0.1: the proxy
    as_xuhui = {"X-Remote-User": "xuhui", "X-Forwarded-For": "203.0.113.7"}
    assert proxy.get("/api/v1/me", headers=as_xuhui).get_json()["name"] == "xuhui"
    assert proxy.get("/api/v1/summary?area_id=310104", headers=as_xuhui).status_code == 200
    assert proxy.get("/api/v1/summary?area_id=310101", headers=as_xuhui).status_code == 403
    # an account the cockpit does not know: refused, and audited
    assert proxy.get("/api/v1/summary", headers={"X-Remote-User": "mallory"}).status_code == 403
    # the same header straight from a browser (not the proxy) is ignored
    browser = sso_app.test_client()
    direct = {"REMOTE_ADDR": "198.51.100.4"}
    assert browser.get("/api/v1/summary", headers={"X-Remote-User": "boss"},
                       environ_base=direct).status_code == 401
    boss = {"X-Remote-User": "boss"}
    audit = proxy.get("/api/v1/audit", headers=boss).get_json()
    denied = [e for e in audit if e["action"] == "denied" and e["user"] == "xuhui"]
    assert denied and denied[0]["address"] == "203.0.113.7"  # the caller, not the proxy
    assert any(e["action"] == "sso_unknown" and e["target"] == "mallory" for e in audit)


def test_acc014_single_sign_on_is_off_by_default_and_needs_a_proxy(app, settings):
    http = app.test_client()  # the default app: the header means nothing
    assert http.get("/api/v1/summary", headers={"X-Remote-User": "boss"}).status_code == 401
    with pytest.raises(SettingsError, match="CITYBRAIN_TRUSTED_PROXIES"):
        create_app(settings.replace(secret_key=SECRET, sso_header="X-Remote-User"))
    with pytest.raises(SettingsError, match="CITYBRAIN_TRUSTED_PROXIES"):
        Settings.load(env={"CITYBRAIN_TRUSTED_PROXIES": "the-proxy"})


def replay(app, cookie: str) -> int:
    """The status of the district summary asked with a copied session cookie."""
    http = app.test_client()
    http.set_cookie("citybrain_session", cookie)
    return http.get("/api/v1/summary?area_id=310104").status_code


def signed_in_cookie(app, name: str = "xuhui"):
    """A fresh sign-in: its client and a copy of its session cookie (checked to work)."""
    http = app.test_client()
    assert sign_in(http, name).status_code == 302
    cookie = http.get_cookie("citybrain_session").value
    assert replay(app, cookie) == 200
    return http, cookie


def test_acc015_sign_out_ends_the_session_on_the_server(app):
    http, cookie = signed_in_cookie(app)
    _, other = signed_in_cookie(app)  # the same user on another PC
    http.get("/logout")
    assert replay(app, cookie) == 401
    assert replay(app, other) == 200


ACCOUNT_CHANGES = {
    "remove": lambda store: store.remove("xuhui"),
    "passwd": lambda store: store.passwd("xuhui", "another long password"),
    "role": lambda store: store.change("xuhui", role="city"),
    "scope": lambda store: store.change("xuhui", role="district", scope="310101"),
}


@pytest.mark.parametrize("change", sorted(ACCOUNT_CHANGES))
def test_acc016_account_changes_end_all_sessions_of_the_user_at_once(app, store, change):
    _, first = signed_in_cookie(app)
    _, second = signed_in_cookie(app)
    _, boss = signed_in_cookie(app, "boss")
    ACCOUNT_CHANGES[change](store)  # no cache invalidation: the next request must see it
    assert replay(app, first) == 401 and replay(app, second) == 401
    assert replay(app, boss) == 200  # other users keep theirs


def test_acc017_users_command_ends_the_sessions(app, redis_url):
    from tests.test_cli import ROOT, clean_env

    def users(*args: str, stdin: str = "") -> None:
        done = subprocess.run([sys.executable, "-m", "dashboard.cli", "users", *args],
                              cwd=ROOT, env=clean_env(REDIS_URL=redis_url), input=stdin,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    _, cookie = signed_in_cookie(app)
    users("set", "xuhui", "--role", "city")
    assert replay(app, cookie) == 401
    http, cookie = signed_in_cookie(app)
    assert http.get("/api/v1/me").get_json()["role"] == "city"
    users("passwd", "xuhui", "--password-stdin", stdin="a new long password\n")
    assert replay(app, cookie) == 401


def wall_cookie(app, token: str) -> str:
    """The session cookie a wall screen gets by opening `/?token=` (checked to work)."""
    wall = app.test_client()
    assert wall.get(f"/?token={token}").status_code == 200
    cookie = wall.get_cookie("citybrain_session").value
    assert replay(app, cookie) == 200
    return cookie


def test_acc018_a_revoked_or_replaced_wall_token_ends_the_sessions_it_opened(app, store):
    first = wall_cookie(app, store.issue_token("wall1"))
    second_token = store.issue_token("wall1")  # a new token revokes the old one
    assert replay(app, first) == 401
    second = wall_cookie(app, second_token)
    _, official = signed_in_cookie(app)
    store.revoke_token("wall1")
    assert replay(app, second) == 401
    assert app.test_client().get(f"/api/v1/summary?token={second_token}").status_code == 401
    assert replay(app, official) == 200  # other sessions stay


def test_acc019_simultaneous_wrong_passwords_get_at_most_five_checks(app):
    http = app.test_client()
    for _ in range(FAILURES_ALLOWED + 2):  # signing in does not use up the address's tries
        assert sign_in(http, "boss").status_code == 302
    guesses = 20
    ready = threading.Barrier(guesses)

    def guess(base: str) -> int:
        ready.wait(30)
        return requests.post(f"{base}/login", data={"name": "xuhui", "password": "wrong guess!"},
                             allow_redirects=False, timeout=120).status_code

    with live_server(SimpleNamespace(server=app)) as base, ThreadPoolExecutor(guesses) as pool:
        codes = list(pool.map(guess, [base] * guesses))
    assert sorted(codes) == [401] * FAILURES_ALLOWED + [429] * (guesses - FAILURES_ALLOWED), codes
    assert sign_in(http).status_code == 429  # the name stays blocked, even with its password


def test_acc020_redis_outage_answers_503_and_never_lets_a_request_in(tmp_path, geography):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        settings = Settings.load(env={"REDIS_URL": url, "CITYBRAIN_CACHE_TTL_S": "0.001"})
        UserStore(connect(url), settings.state_prefix, geography).add(
            "xuhui", "district", PASSWORD, "310104")
        app = create_app(settings.replace(secret_key=SECRET)).server
        fresh = create_app(settings.replace(secret_key=SECRET)).server  # no request yet
        _, cookie = signed_in_cookie(app)
        server.stop()
        for http in (app, fresh):
            down = http.test_client()
            down.set_cookie("citybrain_session", cookie)
            answer = down.get("/api/v1/summary?area_id=310104")
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        server.start()
        assert replay(app, cookie) == 200  # the outage ended no session
    finally:
        server.stop()


def test_acc021_a_callback_outside_the_scope_answers_no_data_without_an_http_error(app):
    """The page's renderer logs every failed update: a refused callback updates nothing."""
    from tests import dashcb

    http = app.test_client()
    sign_in(http)
    huangpu = {"url.search": "?area=310101"}
    drawn = dashcb.post(http, "screen-root.children", huangpu, ["url.search"])
    assert drawn.status_code == 200
    shown = str(dashcb.outputs(drawn)["screen-root.children"])
    assert "scope-refused" in shown and "黄浦" not in shown and "kpi" not in shown
    tick = dashcb.post(http, "kpi-row.children", {**huangpu, "tick.n_intervals": 3},
                       ["tick.n_intervals"])
    assert tick.status_code == 204 and tick.data == b""
    panel = dashcb.post(http, "incident-body.children",
                        {"incident-sel.data": "P1", "url.search": "?area=310104"},
                        ["incident-sel.data"])
    assert panel.status_code == 204 and "浦东" not in panel.get_data(as_text=True)
    assert http.get("/api/v1/summary?area_id=310101").status_code == 403  # the API keeps 403
    boss = app.test_client()
    sign_in(boss, "boss")
    denied = [e for e in boss.get("/api/v1/audit").get_json() if e["action"] == "denied"]
    assert [e["target"] for e in denied].count("310101") == 3  # render, tick and the API
