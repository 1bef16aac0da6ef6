/* Inlined into the page's <head> (dashboard/screen/index.py), before any script loads.
   A wall PC must not stay blank: when a script or style sheet of the page fails to load,
   or the Dash renderer has not drawn the layout after START_MS, reload the page once the
   server answers it again, waiting 1, 2, 4 ... 60 s between tries (counted per tab). */
(function () {
  "use strict";
  var START_MS = 30000, MAX_WAIT_MS = 60000, KEY = "citybrain-reloads";
  var began = Date.now(), reloading = false;

  function tries() {
    try { return Number(sessionStorage.getItem(KEY)) || 0; } catch (e) { return 0; }
  }
  function remember(n) {
    try {
      if (n) { sessionStorage.setItem(KEY, String(n)); } else { sessionStorage.removeItem(KEY); }
    } catch (e) { /* storage off: the wait stays at its first step */ }
  }
  function started() {
    var entry = document.getElementById("react-entry-point");
    return !!(entry && entry.firstElementChild
              && !entry.querySelector("._dash-loading"));
  }
  function reload(why) {
    if (reloading) { return; }
    reloading = true;
    var n = tries();
    remember(n + 1);
    var wait = Math.min(MAX_WAIT_MS, 1000 * Math.pow(2, n));
    console.warn("cockpit: " + why + "; reloading in " + wait / 1000 + " s");
    (function attempt() {
      setTimeout(function () {
        fetch(location.href, {cache: "no-store", credentials: "same-origin"})
          .then(function (r) { if (r.ok) { location.reload(); } else { throw r.status; } })
          .catch(function () { wait = Math.min(MAX_WAIT_MS, wait * 2); attempt(); });
      }, wait);
    })();
  }
  window.addEventListener("error", function (event) {
    var el = event.target;
    if (el && (el.tagName === "SCRIPT" || (el.tagName === "LINK" && el.rel === "stylesheet"))) {
      reload("could not load " + (el.src || el.href));
    }
  }, true);
  (function watch() {
    if (started()) { remember(0); return; }
    if (Date.now() - began > START_MS) { reload("the screen did not start"); return; }
    setTimeout(watch, 250);
  })();
})();
