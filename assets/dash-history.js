/* Dash's renderer records every input change that is not a callback's answer (each
   Interval tick, each pushed update applied with set_props, each tour step) in its undo
   history (`history.past`, dash-renderer's reducer, ON_PROP_CHANGE) and never drops
   any: a wall open for days grows its heap by it. The cockpit has no undo: keep the
   last `kept` entries, checked every `everyMs`. */
(function () {
  var config = window.cockpitHistory = {kept: 20, everyMs: 10000, trimmed: 0};

  function trim() {
    (window.dash_stores || []).forEach(function (store) {
      var state = store.getState ? store.getState() : null;
      var past = state && state.history && state.history.past;
      if (past && past.length > config.kept) {
        config.trimmed += past.length - config.kept;
        past.splice(0, past.length - config.kept);  /* in place: the next change copies it */
      }
    });
  }

  setInterval(trim, config.everyMs);
})();
