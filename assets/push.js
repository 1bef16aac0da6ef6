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
  var DRAW_WAIT_MS = 5000;  // the longest a map draw holds the next patch
  var PATCH = "__dash_patch_update";
  var s = {es: null, cfg: null, live: true, topic: null, last: null, seen: 0, backoff: 1000,
           timer: null, pushing: false, mapBusy: false, mapPatch: null,
           pollWhenDrawn: false, ready: [], kind: null};

  function dc() { return window.dash_clientside; }

  function setProps(id, props) {
    try { dc().set_props(id, props); return true; } catch (e) { return false; }
  }

  function polling(on) {
    s.pushing = !on;
    setProps("tick", {disabled: !on});
  }

  function status(kind) {
    s.kind = kind;
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
    var gd = mapGraph();
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

  /* The wire's short forms back into what Dash takes (dashboard/push/message.py). */
  var NAMESPACES = {h: "dash_html_components", d: "dash_core_components"};
  var OPS = {a: "Assign", i: "Insert", d: "Delete"};

  function expand(value) {
    if (Array.isArray(value)) { return value.map(expand); }
    if (value === null || typeof value !== "object") { return value; }
    if (value["~p"]) {
      var patch = {operations: value["~p"].map(function (op) {
        var out = {operation: OPS[op[0]], location: op[1], params: {}};
        if (op[0] === "a") { out.params.value = expand(op[2]); }
        if (op[0] === "i") { out.params.index = op[2]; out.params.value = expand(op[3]); }
        return out;
      })};
      patch[PATCH] = PATCH;
      return patch;
    }
    var props = {};
    Object.keys(value).forEach(function (k) { if (k !== "~") { props[k] = expand(value[k]); } });
    if (!value["~"]) { return props; }
    var ns = value["~"][1];
    return {type: value["~"][0], namespace: NAMESPACES[ns] || ns, props: props};
  }

  function mapGraph() { return document.querySelector("#map-graph .js-plotly-plot"); }

  /* Calls `done` once the map has shown the figure just handed to it: purge-guard.js
     gives the promise of the next figure Plotly draws on the graph to the functions in
     `cockpitWaiters`, and that promise settles once MapLibre has painted a frame of it.
     Or after DRAW_WAIT_MS, whatever the draw does: a draw that never settles (a graph
     replaced mid-draw, a map whose style never loads) must not hold every later patch
     (they were joined without end: the soak's heap grew by the joined patches of a map
     that no longer drew). */
  function afterDraw(done) {
    var gd = mapGraph(), called = false;
    function finish() { if (!called) { called = true; done(); } }
    setTimeout(finish, DRAW_WAIT_MS);
    if (!gd) { finish(); return; }
    (gd.cockpitWaiters = gd.cockpitWaiters || []).push(function (shown) {
      shown.then(finish, finish);
    });
  }

  /* One map draw at a time: the messages that arrive while the map draws wait, and are
     applied together once it is drawn (`flush`), so a map slower to draw than updates
     arrive shows the newest state one draw later instead of queueing every one, and the
     lists and numbers change with the map, once a draw, not at every message. */
  function setMap(figure) {
    s.mapBusy = true;
    setProps("map-graph", {figure: figure});
    afterDraw(function () {
      s.mapBusy = false;
      if (s.mapPatch) {
        var next = s.mapPatch;
        s.mapPatch = null;
        setMap(next);
        return;
      }
      if (s.pollWhenDrawn) { s.pollWhenDrawn = false; polling(true); }  // (push went away)
      flush();  // (what a new connection sent meanwhile: its snapshot stops the polling)
    });
  }

  function applyMap(figure, snapshot) {
    if (snapshot || !figure || !figure[PATCH]) { s.mapPatch = null; setMap(figure); return; }
    if (s.mapBusy) { s.mapPatch = joined(s.mapPatch, figure); return; }
    setMap(figure);
  }

  /* A data line is JSON, or `z` and the JSON's raw deflate in base64 (message.py `wire`).
     Inflated at once (assets/vendor/tiny-inflate.js): the browser's own
     DecompressionStream is asynchronous, and on a page whose main thread is busy drawing
     the map each of its steps waited for a turn (0.8 s a message, median, at 50
     events/s in bench/screen.py). */
  function text(data) {
    if (data.charAt(0) !== "z") { return data; }
    var bin = atob(data.slice(1)), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    for (var room = Math.max(65536, 16 * bytes.length); ; room *= 4) {
      var out = window.tinyInflate(bytes, new Uint8Array(room));
      if (out.length < room) { return new TextDecoder().decode(out); }
    }
  }

  /* The messages that are ready are applied together, once the page is free and the map
     not drawing: a page rendering every message's outputs at 50 events/s fell behind for
     good (software rendering, two cores: bench/screen.py saw 1 to 4 s, growing, between
     a message's arrival and its map patch). A batch holds, per output, the last whole
     value or the joined operations of several patches; a patch after a whole value, or
     a snapshot, starts the next batch. */
  function receive(event) {
    var json;
    try { json = text(event.data); } catch (e) { return; }
    s.seen = Date.now();
    s.ready.push([json, event.lastEventId]);
    if (s.ready.length === 1 && !s.mapBusy) { setTimeout(flush, 0); }
  }

  function flush() {
    if (s.mapBusy || !s.ready.length) { return; }  // the draw's end flushes (setMap)
    var ready = s.ready, batch = null;
    s.ready = [];
    ready.forEach(function (item) {
      var msg = accept(item[0], item[1]);
      if (!msg || (batch && join(batch, msg))) { return; }
      if (batch) { apply(batch); }
      batch = msg;
    });
    if (batch) { apply(batch); }
  }

  /* A message for this screen, expanded (null: unreadable, or of an area it has left). */
  function accept(data, lastEventId) {
    var msg;
    try { msg = expand(JSON.parse(data)); } catch (e) { return null; }
    var q = new URLSearchParams(window.location.search);
    if (q.get("area") && msg.key.split("|")[0] !== q.get("area")) { return null; }
    s.last = lastEventId || s.last;
    msg.props = msg.props || {};
    return msg;
  }

  /* One patch doing what `first` (or nothing, when null) and then `second` do. */
  function joined(first, second) {
    var out = {};
    out[PATCH] = PATCH;
    out.operations = (first ? first.operations : []).concat(second.operations);
    return out;
  }

  function isPatch(value) { return !!value && typeof value === "object" && !!value[PATCH]; }

  /* Joins `msg` into `batch`; false (and `batch` unchanged) when it cannot. */
  function join(batch, msg) {
    if (msg.snapshot) { return false; }
    var props = msg.props, ids = Object.keys(props);
    var clash = ids.some(function (id) {
      var had = batch.props[id] || {};
      return Object.keys(props[id]).some(function (prop) {
        return isPatch(props[id][prop]) && prop in had && !isPatch(had[prop]);
      });
    });
    if (clash) { return false; }
    ids.forEach(function (id) {
      var had = batch.props[id] = batch.props[id] || {};
      Object.keys(props[id]).forEach(function (prop) {
        var value = props[id][prop];
        had[prop] = isPatch(value) && isPatch(had[prop]) ? joined(had[prop], value) : value;
      });
    });
    return true;
  }

  function apply(msg) {
    var props = msg.props;
    if (msg.snapshot && props["map-graph"] && props["map-graph"].figure) {
      var on = visibleLayers();  // a snapshot's map keeps the layers this screen shows
      props["map-graph"].figure.data.forEach(function (trace, i) {
        trace.visible = !!on[msg.owners[i]];
      });
      keepFit(props["map-graph"].figure);
    }
    Object.keys(props).forEach(function (id) {
      if (id === "map-graph" && props[id].figure && document.getElementById(id)) {
        applyMap(props[id].figure, msg.snapshot);
      } else if (id === "tick-sig" || document.getElementById(id)) {
        setProps(id, props[id]);
      }
    });
    if (!s.pushing) { polling(false); status("push"); }
    s.backoff = 1000;
  }

  /* Drop the stream and what it sent that is not applied yet; the next connection asks
     for a snapshot. */
  function forget() {
    close();
    s.ready = [];
    s.last = null;
  }

  /* Push is gone (or blocked): poll until it is back. What push left half done must not
     land on what polling shows: the messages not applied yet are dropped (the page's
     signature is still that of what it shows, so the first tick sends what they held),
     a map patch waiting for a draw is drawn first, and the tick starts once the map has
     drawn it. The next connection asks for a snapshot: polled outputs are not what the
     push process's next patches would be applied to. */
  function lost(kind) {
    forget();
    status(kind);
    if (s.mapBusy) { s.pollWhenDrawn = true; } else { polling(true); }
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
    es.addEventListener("update", receive);
    es.addEventListener("ping", function () { s.seen = Date.now(); });
    es.onerror = function () {  // reconnected by the watchdog, not by the browser itself:
      if (es === s.es) { lost("retry"); }  // its Last-Event-ID would resume after polling
    };
  }

  setInterval(function () {  // the watchdog: a stream silent for too long is dead
    if (s.es && Date.now() - s.seen > 2 * KEEP_ALIVE_MS + 5000) { lost("retry"); }
  }, 2000);

  function configure(cfg, replay) {
    var atInUrl = new URLSearchParams(window.location.search).get("at");
    var live = !(replay && replay.at !== null && replay.at !== undefined) && !atInUrl;
    if (cfg && !cfg.up && live && s.live && s.pushing && s.es && s.topic === topic()) {
      // "down" from a tick's answer that left before push took over: the stream this page
      // is fed by says otherwise (it closed the stream and polled for a stale answer;
      // `sigSeen` mends what that answer showed; if the stream fails, the page polls)
      return dc().no_update;
    }
    s.live = live;
    s.cfg = cfg || null;
    if (!cfg || !s.live) { close(); polling(true); status(null); return dc().no_update; }
    if (!cfg.up) { close(); polling(true); status("poll"); return dc().no_update; }
    var now = topic();
    if (!s.es || s.topic !== now) {
      if (s.topic !== now) { s.last = null; }
      s.topic = now;
      s.backoff = 1000;
      connect();
    }
    // A screen drawn anew (another area, the tour's next step, another language) comes
    // with a fresh, hidden header: say again what the page does.
    if (s.kind) { status(s.kind); }
    return dc().no_update;
  }

  /* A polling tick's answer that lands once push has taken over (it left before): the
     outputs it set are not those the push process's next patches apply to (an item of
     the feed lost for good). Its signature says "tick": ask for a snapshot. */
  function sigSeen(sig) {
    if (sig && sig.by === "tick" && s.pushing && s.es) { forget(); connect(); }
    return dc().no_update;
  }

  /* What the client holds now (for a failing test's message). */
  function probe() {
    return {kind: s.kind, pushing: s.pushing, live: s.live, up: !!(s.cfg && s.cfg.up),
            es: s.es ? s.es.readyState : null, timer: !!s.timer, backoff: s.backoff,
            mapBusy: s.mapBusy, ready: s.ready.length, pollWhenDrawn: s.pollWhenDrawn,
            seenAgoMs: s.seen ? Date.now() - s.seen : null, last: s.last};
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.push = {configure: configure, sigSeen: sigSeen,
                                 text: text, probe: probe};  // text, probe: for tests
})();
