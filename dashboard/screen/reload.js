/* Inlined into the page's <head> (dashboard/screen/index.py), before any script loads.
   A wall PC must not stay blank. When a script or style sheet of the page fails to load,
   or the screen has not been drawn START_MS after the page began (a failed layout or
   callback leaves it empty), the page reloads itself once the server answers it again:
   after 1, 2, 4 ... 60 s, and each try gives the screen twice as long (up to 8 times
   START_MS). The count of tries lives in this tab's sessionStorage. */
(function () {
  "use strict";
  var START_MS = @START_MS@, READY = @READY@, MAX_WAIT_MS = 60000, KEY = "citybrain-reloads";
  var began = Date.now(), reloading = false;

  function tries() {
    try { return Number(sessionStorage.getItem(KEY)) || 0; } catch (e) { return 0; }
  }
  function remember(n) {
    try {
      if (n) { sessionStorage.setItem(KEY, String(n)); } else { sessionStorage.removeItem(KEY); }
    } catch (e) { /* storage off: every wait stays at its first step */ }
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
  var patience = START_MS * Math.pow(2, Math.min(tries(), 3));
  (function watch() {
    if (document.querySelector(READY)) { remember(0); return; }
    if (Date.now() - began > patience) { reload("the screen was not drawn"); return; }
    setTimeout(watch, 250);
  })();
})();
