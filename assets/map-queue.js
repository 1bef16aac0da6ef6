/* One map draw at a time: pushed map updates wait while the map is drawing, merged.
   Dash's Graph chains every new figure onto the promise of the draw before it
   (`this._queue = this._queue.then(() => plot(figure))`, dcc async-graph.js), each link
   holding its whole figure. When updates come faster than MapLibre draws them (push at
   50 events/s on a busy PC), the chain only grows: the soak measured the page's heap
   after GC growing ~10 MB a minute, and the map falling behind. Here an update that
   comes while the map draws waits; the next ones are merged into it (a Patch's
   operations appended in order, a whole figure replacing what waited), and it is
   applied once the draw has settled: at most one draw in flight and one waiting.
   Updates for a map that was replaced meanwhile (another area) are dropped. */
(function () {
  "use strict";
  var CHECK_MS = 100, SETTLE_MS = 50, MAX_HOLD_MS = 10000;
  var waiting = null;  // {gd, full, ops, since, apply}
  var lastApplied = 0;

  function graph() { return document.querySelector("#map-graph .js-plotly-plot"); }
  function isPatch(figure) { return !!(figure && figure.__dash_patch_update); }
  function drawing(gd) {
    return !!gd && (!!gd.cockpitDrawing || gd.classList.contains("dash-graph--pending") ||
                    Date.now() - lastApplied < SETTLE_MS);
  }

  function flush() {
    if (!waiting) { return; }
    var gd = graph();
    if (gd !== waiting.gd) { waiting = null; return; }  // the map was replaced: stale
    if (drawing(gd) && Date.now() - waiting.since < MAX_HOLD_MS) { return; }
    var next = waiting;
    if (next.full) {  // a whole figure first; the patches after it wait for its draw
      waiting = next.ops.length ? {gd: gd, full: null, ops: next.ops, since: Date.now(),
                                   apply: next.apply} : null;
      next.apply({figure: next.full});
    } else {
      waiting = null;
      next.apply({figure: {__dash_patch_update: "__dash_patch_update",
                           operations: next.ops}});
    }
    lastApplied = Date.now();
  }

  /* Apply the map's props now if the map is idle, else merge them into what waits. */
  function put(props, apply) {
    var gd = graph();
    var figure = props && props.figure;
    if (!gd || !figure || (!waiting && !drawing(gd))) {
      apply(props);
      lastApplied = Date.now();
      return;
    }
    if (!waiting || waiting.gd !== gd) {
      waiting = {gd: gd, full: null, ops: [], since: Date.now(), apply: apply};
    }
    waiting.apply = apply;
    if (isPatch(figure)) {
      waiting.ops = waiting.ops.concat(figure.operations || []);
    } else {
      waiting.full = figure;
      waiting.ops = [];
    }
  }

  setInterval(flush, CHECK_MS);
  window.cockpitMapQueue = {put: put, waiting: function () { return waiting; }};
})();
