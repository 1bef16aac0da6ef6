/* The screen's push client: updates from the push process (server-sent events) applied with
   `dash_clientside.set_props`, no server round trip. While it is connected the polling tick
   is off; while it is not (push down, blocked by a proxy, reconnecting, looking back) the
   tick polls as before and the header says so. An EventSource stops for good after a
   non-200 answer (a proxy's 502 while push restarts), so a watchdog reconnects with
   backoff, resuming from the last message id (`?last=`) or getting a snapshot. */
(function () {
  "use strict";
  var KEEP_ALIVE_MS = 15000;
  var MAX_BACKOFF_MS = 30000;
  var s = {es: null, cfg: null, live: true, topic: null, last: null, seen: 0, backoff: 1000,
           timer: null, pushing: false};

  function dc() { return window.dash_clientside; }

  function setProps(id, props) {
    try { dc().set_props(id, props); return true; } catch (e) { return false; }
  }

  function polling(on) {
    s.pushing = !on;
    setProps("tick", {disabled: !on});
  }

  function status(kind) {
    var text = kind && s.cfg ? s.cfg.texts[kind] : ["", ""];
    setProps("push-status", {children: text[0], title: text[1],
                             className: "push-status " + (kind ? "is-" + kind : "hidden")});
  }

  function topic() {
    var q = new URLSearchParams(window.location.search), out = new URLSearchParams();
    ["area", "lang"].forEach(function (k) { if (q.get(k)) { out.set(k, q.get(k)); } });
    return out.toString();
  }

  function base() {
    var url = s.cfg.url;
    if (!url) {
      return window.location.protocol + "//" + window.location.hostname + ":" + s.cfg.port +
        "/push";
    }
    return url.charAt(0) === "/" ? window.location.origin + url : url;
  }

  function close() {
    if (s.es) { s.es.close(); s.es = null; }
    if (s.timer) { clearTimeout(s.timer); s.timer = null; }
  }

  function visibleLayers() {
    var on = {};
    document.querySelectorAll("#map-layers input[type=checkbox]").forEach(function (box) {
      if (box.checked) { on[box.value] = true; }
    });
    return on;
  }

  /* A snapshot is made once for every screen of its area: its map is fitted to a default
     box. Keep this screen's own fit and text sizes (`viewport.Box`, cockpit.js). */
  function keepFit(figure) {
    var gd = document.querySelector("#map-graph .js-plotly-plot");
    var now = gd && gd.layout;
    var next = figure.layout;
    if (!now || !now.map || !next || !next.map || now.uirevision !== next.uirevision) { return; }
    next.map.center = now.map.center;
    next.map.zoom = now.map.zoom;
    if (now.font) { next.font = now.font; }
    if (now.hoverlabel) { next.hoverlabel = now.hoverlabel; }
    var fonts = {};
    (gd.data || []).forEach(function (trace) { if (trace.textfont) { fonts[trace.uid] = trace.textfont; } });
    figure.data.forEach(function (trace) {
      if (trace.textfont && fonts[trace.uid]) { trace.textfont = fonts[trace.uid]; }
    });
  }

  function apply(event) {
    var msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    var q = new URLSearchParams(window.location.search);
    if (q.get("area") && msg.key.split("|")[0] !== q.get("area")) { return; }  // area left
    s.last = event.lastEventId || s.last;
    s.seen = Date.now();
    var props = msg.props || {};
    if (msg.snapshot && props["map-graph"] && props["map-graph"].figure) {
      var on = visibleLayers();  // a snapshot's map keeps the layers this screen shows
      props["map-graph"].figure.data.forEach(function (trace, i) {
        trace.visible = !!on[msg.owners[i]];
      });
      keepFit(props["map-graph"].figure);
    }
    Object.keys(props).forEach(function (id) {
      if (id === "map-graph" && window.cockpitMapQueue && document.getElementById(id)) {
        window.cockpitMapQueue.put(props[id], function (p) { setProps(id, p); });
      } else if (id === "tick-sig" || document.getElementById(id)) { setProps(id, props[id]); }
    });
    if (!s.pushing) { polling(false); status("push"); }
    s.backoff = 1000;
  }

  function lost(kind) {
    close();
    polling(true);
    status(kind);
    if (s.cfg && s.cfg.up && s.live) {
      s.timer = setTimeout(connect, s.backoff);
      s.backoff = Math.min(MAX_BACKOFF_MS, s.backoff * 2);
    }
  }

  function connect() {
    close();
    var url = base() + "/stream?" + topic() + (s.last ? "&last=" + encodeURIComponent(s.last)
                                                      : "");
    var es = new EventSource(url, {withCredentials: true});
    s.es = es;
    s.seen = Date.now();
    es.addEventListener("update", apply);
    es.addEventListener("ping", function () { s.seen = Date.now(); });
    es.onerror = function () {
      if (es !== s.es) { return; }
      if (es.readyState === EventSource.CLOSED) { lost("retry"); return; }
      if (s.pushing) { polling(true); status("retry"); }  // the browser reconnects itself
    };
  }

  setInterval(function () {  // the watchdog: a stream silent for too long is dead
    if (s.es && Date.now() - s.seen > 2 * KEEP_ALIVE_MS + 5000) { lost("retry"); }
  }, 2000);

  function configure(cfg, replay) {
    var atInUrl = new URLSearchParams(window.location.search).get("at");
    s.live = !(replay && replay.at !== null && replay.at !== undefined) && !atInUrl;
    s.cfg = cfg || null;
    if (!cfg || !s.live) { close(); polling(true); status(null); return dc().no_update; }
    if (!cfg.up) { close(); polling(true); status("poll"); return dc().no_update; }
    var now = topic();
    if (s.es && s.topic === now) { return dc().no_update; }
    if (s.topic !== now) { s.last = null; }
    s.topic = now;
    s.backoff = 1000;
    connect();
    return dc().no_update;
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.push = {configure: configure};
})();
