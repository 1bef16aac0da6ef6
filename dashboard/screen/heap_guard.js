/* Inlined into the page's <head> (dashboard/screen/index.py). A wall runs for days: if
   the page's JS heap (performance.memory.usedJSHeapSize, Chromium only) passes
   CEILING_MB, the page says so (console.info and a beacon the server logs) and reloads
   itself. Checked every CHECK_MS; at most one such reload per MIN_GAP_MS in this tab
   (sessionStorage), so a ceiling set too low cannot make the wall reload in a loop.
   CEILING_MB 0: off. window.__heapGuard tells tests and the soak what it saw. */
(function () {
  "use strict";
  var CEILING_MB = @CEILING_MB@, CHECK_MS = @CHECK_MS@, BEACON = @BEACON@;
  var MIN_GAP_MS = 600000, KEY = "citybrain-heap-reload", MB = 1048576;
  var state = window.__heapGuard = {ceilingMb: CEILING_MB, checks: 0, lastMb: null,
                                    reloading: false, held: false};
  if (!CEILING_MB || !window.performance || !performance.memory) { return; }

  function lastReload() {
    try { return Number(sessionStorage.getItem(KEY)) || 0; } catch (e) { return 0; }
  }
  function check() {
    var used = performance.memory.usedJSHeapSize / MB;
    state.checks += 1;
    state.lastMb = Math.round(used * 10) / 10;
    if (used <= CEILING_MB || state.reloading) { return; }
    if (Date.now() - lastReload() < MIN_GAP_MS) {  // reloaded a moment ago: no loop
      if (!state.held) { console.info("cockpit heap guard: over the ceiling again, " +
                                      "not reloading twice within " + MIN_GAP_MS / 60000 +
                                      " min"); }
      state.held = true;
      return;
    }
    state.reloading = true;
    try { sessionStorage.setItem(KEY, String(Date.now())); } catch (e) { /* storage off */ }
    var why = {heap_mb: state.lastMb, ceiling_mb: CEILING_MB, url: location.pathname +
               location.search.replace(/([?&]token=)[^&]*/, "$1…")};
    console.info("cockpit heap guard: JS heap " + why.heap_mb + " MB over the ceiling of " +
                 CEILING_MB + " MB; reloading the page");
    var sent = false;
    try {
      sent = navigator.sendBeacon(BEACON, new Blob([JSON.stringify(why)],
                                                   {type: "application/json"}));
    } catch (e) { sent = false; }
    if (!sent) {  // no beacon: a plain request, then reload either way
      fetch(BEACON, {method: "POST", credentials: "same-origin", keepalive: true,
                     headers: {"Content-Type": "application/json"}, body: JSON.stringify(why)})
        .catch(function () { return null; });
    }
    setTimeout(function () { location.reload(); }, 200);
  }
  setInterval(check, CHECK_MS);
})();
