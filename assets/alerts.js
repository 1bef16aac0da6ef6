/* Alert focus (告警联动) in the browser: the queue of the alerts the server lists.
 *
 * The tick puts the user's current alerts (newest first) into the `alert-list` store;
 * this shows the newest one not shown yet for `show_ms`, then the next, and so on. A
 * wall screen flies its map to each (a Patch of the map's centre and zoom, with its
 * own `uirevision` so that it wins over an earlier pan) and back to the view before;
 * the ring pulses at the map's centre, which is then the alert's place. Other screens
 * show the card and leave their map alone. Alerts shown are remembered for the
 * browser session (a reload does not show them again). All text is set as text.
 */
(function () {
  var SEEN = "cockpit.alerts.seen";
  var state = {current: null, acks: 0};
  window.cockpitWall = window.cockpitWall || {holdUntil: 0};

  function seen() {
    try {
      return JSON.parse(window.sessionStorage.getItem(SEEN) || "[]");
    } catch (e) {
      return [];
    }
  }

  function remember(id) {
    var ids = seen().filter(function (x) { return x !== id; });
    ids.push(id);
    try {
      window.sessionStorage.setItem(SEEN, JSON.stringify(ids.slice(-500)));
    } catch (e) { /* storage full or off: the alert may show again after a reload */ }
  }

  function mapView() {
    var gd = document.querySelector("#map-graph .js-plotly-plot");
    var map = gd && gd._fullLayout && gd._fullLayout.map;
    if (!map || !map.center) { return null; }
    return {center: {lon: map.center.lon, lat: map.center.lat}, zoom: map.zoom};
  }

  function fly(view, revision) {
    var patch = new window.dash_clientside.Patch();
    patch.assign(["layout", "map", "center"], view.center);
    patch.assign(["layout", "map", "zoom"], view.zoom);
    patch.assign(["layout", "map", "uirevision"], revision);
    return patch.build();
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.cockpit_alerts = {
    run: function (_tick, list, acks, config) {
      var none = window.dash_clientside.no_update;
      var now = Date.now();
      var alerts = list || [];
      var wall = Boolean(config && config.wall);
      var map = none;
      var current = state.current;
      var before = null;
      var listed = alerts.some(function (a) { return current && a.id === current.alert.id; });
      if (current && ((acks || 0) > state.acks || now >= current.until || !listed)) {
        before = current.before;
        state.current = null;
        window.cockpitWall.holdUntil = 0;
        if (wall && before) { map = fly(before, "back:" + current.alert.id); }
      }
      state.acks = acks || 0;
      if (!state.current) {
        var shown = seen();
        var next = alerts.find(function (a) { return shown.indexOf(a.id) < 0; });
        if (next) {
          remember(next.id);
          state.current = {alert: next, until: now + ((config && config.show_ms) || 20000),
                           before: before || mapView()};
          if (wall) {
            map = fly({center: {lon: next.lon, lat: next.lat}, zoom: next.zoom},
                      "alert:" + next.id);
            window.cockpitWall.holdUntil = state.current.until;
          }
        }
      }
      var a = state.current && state.current.alert;
      if (!a) {
        return ["alert-card hidden", "", "", "", "", "", null, map, "alert-ring hidden"];
      }
      return ["alert-card shown alert-" + a.kind, a.head, a.what, a.where, a.when, a.why,
              {id: a.id}, map, wall ? "alert-ring pulsing" : "alert-ring hidden"];
    },
  };
})();
