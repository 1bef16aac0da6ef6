/* A map source given the data it already holds keeps it, unparsed.
   Plotly hands every GeoJSON source of the map to MapLibre again on every figure: a push
   message that recoloured one road re-sent the city's areas, roads and points, each copied
   to MapLibre's worker and tiled again while the page's one thread waited. After the map's
   first draw (assets/purge-guard.js calls `cockpitSkipSameData`), a source's `setData`
   compares the new data with what it was given last (shared geometry by reference, the
   rest by value) and passes it on only when it differs. `cockpitSent` counts what passed. */
(function () {
  "use strict";
  var DEPTH = 16;

  function same(a, b, depth) {
    if (a === b) { return true; }
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
      return a !== a && b !== b;  // NaN
    }
    if (depth > DEPTH) { return false; }
    var isArray = Array.isArray(a);
    if (isArray !== Array.isArray(b)) { return false; }
    if (isArray) {
      if (a.length !== b.length) { return false; }
      for (var i = 0; i < a.length; i++) {
        if (!same(a[i], b[i], depth + 1)) { return false; }
      }
      return true;
    }
    var keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) { return false; }
    for (var k = 0; k < keys.length; k++) {
      var key = keys[k];
      if (!Object.prototype.hasOwnProperty.call(b, key) || !same(a[key], b[key], depth + 1)) {
        return false;
      }
    }
    return true;
  }

  function skipSame(proto) {
    if (proto.cockpitSkipping || typeof proto.setData !== "function") { return; }
    proto.cockpitSkipping = true;
    proto.cockpitSent = 0;
    var setData = proto.cockpitPassOn = proto.setData;  // (a benchmark compares with it)
    proto.setData = function (data) {
      if (this.cockpitHeld !== undefined && same(this.cockpitHeld, data, 0)) { return this; }
      this.cockpitHeld = data;
      proto.cockpitSent += 1;
      return setData.apply(this, arguments);
    };
  }

  window.cockpitSkipSameData = function (map) {
    if (!map || map.cockpitSkipSame || typeof map.getSource !== "function") { return; }
    map.cockpitSkipSame = true;
    var getSource = map.getSource;
    map.getSource = function () {
      var source = getSource.apply(map, arguments);
      if (source && source.type === "geojson") { skipSame(Object.getPrototypeOf(source)); }
      return source;
    };
  };
})();
