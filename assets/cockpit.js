/* The incident a list row's id opens (`{"type": "inc-open", "id": ...}`), or null. */
function openedBy(rowId) {
  var id;
  try { id = JSON.parse(rowId); } catch (e) { return null; }
  return id && id.type === "inc-open" && id.id ? String(id.id) : null;
}

/* Client-side helpers of the cockpit: the wall clock in the city's time zone, and which
   incident the panel shows. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  cockpit: {
    /* A click on a list row opens its incident, a click on ✕ closes the panel. In the
       browser, not a server callback: a server callback is triggered again by every list
       redraw (its new rows), and Dash ignores the answer of a request that a later one of
       the same callback overtook, so a click made just before a redraw was lost. Several
       inputs at once (✕ while a list redraws, its new rows at 0 clicks): ✕ first, then a
       row with a real click. ✕ also forgets what the panel last showed and stops its
       timer: a timer call still on (the panel's timer runs while it is open) would
       otherwise find the incident, opened again, unchanged since it was shown, answer
       "nothing new" and overtake the answer that opens it, once every tick. */
    choose: function (_rows, _close) {
      var dc = window.dash_clientside;
      var keep = dc.no_update;
      var fired = (dc.callback_context.triggered || []).filter(function (t) { return t.value; });
      if (fired.some(function (t) { return t.prop_id === "incident-close.n_clicks"; })) {
        window.cockpitPressed = null;
        return [null, "incident-panel hidden", null, true];
      }
      for (var i = 0; i < fired.length; i++) {
        var id = openedBy(fired[i].prop_id.slice(0, fired[i].prop_id.lastIndexOf(".")));
        if (id) {
          if (window.cockpitPressed === id) {  // the press chose it already
            window.cockpitPressed = null;
            return [keep, keep, keep, keep];
          }
          return [id, keep, keep, keep];
        }
      }
      return [keep, keep, keep, keep];
    },
    clock: function (_n, tz) {
      try {
        return new Date().toLocaleString("sv-SE", {timeZone: tz || undefined, hour12: false});
      } catch (e) {
        return new Date().toLocaleString("sv-SE", {hour12: false});
      }
    },
  },
});

/* The map's real box (`viewport.Box` on the server): its size in CSS pixels, the height
   the time control covers at its top, and the root font size the CSS derives from the
   viewport. Measured whenever the map or the time control changes size, and written
   into the `screen-box` store only when it changed: the server then fits the selected
   area into the box and sizes Plotly's text for the rem. */
(function () {
  var observed = [];
  var last = "";
  var pending = null;

  function box() {
    var map = document.getElementById("map-graph");
    if (!map) return null;
    var r = map.getBoundingClientRect();
    if (r.width < 2 || r.height < 2) return null;
    var top = 0;
    var bar = document.getElementById("timebar");
    if (bar && bar.getClientRects().length) {
      var b = bar.getBoundingClientRect();
      if (b.top < r.top + r.height / 2 && b.bottom > r.top) top = b.bottom - r.top;
    }
    var rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    return {width: Math.round(r.width), height: Math.round(r.height),
            top: Math.round(top), rem: Math.round(rem * 100) / 100};
  }

  function report() {
    pending = null;
    var now = box();
    var dc = window.dash_clientside;
    if (!now || !dc || !dc.set_props) return;
    var key = JSON.stringify(now);
    if (key === last) return;
    last = key;
    dc.set_props("screen-box", {data: now});
  }

  function soon() {  /* one report per burst of resizes (a window dragged wider) */
    if (pending !== null) clearTimeout(pending);
    pending = setTimeout(report, 120);
  }

  var sizes = new ResizeObserver(soon);

  function watch() {  /* a new screen brings a new map element: observe that one */
    var now = [document.getElementById("map-graph"), document.getElementById("timebar")];
    if (now[0] === observed[0] && now[1] === observed[1]) return;
    sizes.disconnect();
    now.forEach(function (el) { if (el) sizes.observe(el); });
    observed = now;
  }

  new MutationObserver(watch).observe(document.documentElement, {childList: true, subtree: true});
})();

/* Dash's Graph queues each figure's draw behind the one before; when the graph is
   replaced (a language or area switch rebuilds the screen, the tour moves on) while a
   draw is queued, that draw runs on the removed element and rejects with
   "Cannot read properties of null (reading 'classList')" (dcc async-graph `plot`).
   Nothing is lost: the new graph draws itself. Only that rejection is quietened; every
   other error still reaches the console. */
window.addEventListener("unhandledrejection", function (event) {
  var reason = event.reason;
  var stack = (reason && reason.stack) || "";
  if (reason instanceof TypeError && /reading 'classList'/.test(reason.message) &&
      /graph/.test(stack)) {
    event.preventDefault();
    console.info("cockpit: a draw of a replaced map was dropped");
  }
});

/* A row is chosen when the mouse button goes down on it, not at the click: a list that
   redraws between press and release (a new row on top every tick on a busy screen) puts
   another row under the pointer, and the browser then sends the click to the list, not
   to a row: the click was lost. Touch keeps the click (a finger pressing a row may be
   starting to scroll the list); the keyboard too. The click that follows a press finds
   its row chosen already (`choose`). */
document.addEventListener("pointerdown", function (event) {
  if (event.pointerType !== "mouse" || event.button !== 0 || !event.isPrimary) return;
  var row = event.target && event.target.closest && event.target.closest("li[id]");
  var id = row && openedBy(row.id);
  var dc = window.dash_clientside;
  if (!id || !dc || !dc.set_props) return;
  window.cockpitPressed = id;
  dc.set_props("incident-sel", {data: id});
}, true);
