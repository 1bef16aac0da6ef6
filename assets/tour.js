/* The tour (巡屏) in the browser: every `every_ms` the next area of the tour.
 *
 * The server sends the areas (checked against the user's scope) in `tour-config`; the
 * step lives in the URL (`step=`, 1-based, next to `area=`), so a reload continues
 * where it was. A step's dwell counts from when its map is drawn. Any operator input (pointer, key, wheel, touch) pauses the tour for
 * `pause_ms`; an alert on the card holds it (`cockpitWall.holdUntil`, set by
 * alerts.js). A tour given by URL is remembered for the browser session, so that
 * following a link (which drops `tour=`) pauses it rather than ending it.
 */
(function () {
  var SAVED = "cockpit.tour";
  var tour = window.cockpitTour = {key: "", since: 0, pausedUntil: 0};
  window.cockpitWall = window.cockpitWall || {holdUntil: 0};

  function pause() {
    var config = tour.config;
    if (config && config.areas && config.areas.length) {
      tour.pausedUntil = Date.now() + (config.pause_ms || 120000);
    }
  }
  ["pointerdown", "keydown", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, pause, {capture: true, passive: true});
  });

  function saved() {
    try {
      return JSON.parse(window.sessionStorage.getItem(SAVED) || "null");
    } catch (e) {
      return null;
    }
  }

  // Navigate the way the screen's own links do (dcc.Location listens for this event),
  // replacing the history entry: a wall that tours for days must not grow its history.
  function go(search) {
    window.setTimeout(function () {
      window.history.replaceState({}, "", window.location.pathname + search);
      window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    }, 0);
  }

  // Whether the map is still drawing (never replace a screen under its drawing map).
  function drawing() {
    var gd = document.querySelector("#map-graph .js-plotly-plot");
    var sub = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
    return !sub || !sub.map || Boolean(gd.cockpitDrawing);
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.cockpit_tour = {
    step: function (_n, search, config) {
      var params = new URLSearchParams(search || "");
      var extra = null;
      if (config && config.from_url) {
        try {
          window.sessionStorage.setItem(SAVED, JSON.stringify(
            {config: config, tour: params.get("tour"), every: params.get("every")}));
        } catch (e) { /* no storage: a link ends the tour */ }
      } else if (config && !(config.areas && config.areas.length) && saved()) {
        extra = saved();
        config = extra.config;
      }
      tour.config = config;
      var areas = (config && config.areas) || [];
      if (!areas.length) {
        return ["", "tour-badge hidden"];
      }
      var now = Date.now();
      var step = parseInt(params.get("step") || "", 10);
      if (!(step >= 1 && step <= areas.length)) {
        step = areas.indexOf(params.get("area")) + 1 || 1;
      }
      var key = areas.join(",") + "|" + step;
      if (tour.key !== key || tour.shown !== config) {  // a new step, or its screen drawn
        tour.key = key;
        tour.shown = config;
        tour.since = now;
      }
      var paused = now < tour.pausedUntil;
      var held = now < (window.cockpitWall.holdUntil || 0);
      if (paused || held || drawing()) {
        tour.since = now;  // after the pause, or once the map is drawn, a whole dwell
      }
      var badge = config.label + " " + step + "/" + areas.length + (paused ? " · " + config.paused : "");
      var css = "tour-badge" + (paused ? " paused" : "");
      var next = step;
      if (!paused && !held && now - tour.since >= config.every_ms) {
        next = step % areas.length + 1;
      } else if (params.get("area") === areas[step - 1] || paused || held) {
        return [badge, css];
      }
      params.set("area", areas[next - 1]);
      params.set("step", String(next));
      if (extra) {  // back on the tour after a link dropped it from the URL
        if (extra.tour) { params.set("tour", extra.tour); }
        if (extra.every) { params.set("every", extra.every); }
      }
      tour.key = areas.join(",") + "|" + next;
      tour.since = now;
      go("?" + params.toString());
      badge = config.label + " " + next + "/" + areas.length;
      return [badge, "tour-badge"];
    },
  };
})();
