/* Plotly's map leaves five listeners behind on every figure it draws. Each `updateMap`
   (plotly.js 3.8, `rejectOnError`) registers one function with `map.once` for "error",
   "style.error", "source.error", "tile.error" and "layer.error", to reject that draw's
   promise; they go only when such an error fires, so a map that draws without errors
   keeps every one. The soak's heap snapshots found them: 3,215 of them after 19 minutes
   of pushed updates, all held by the MapLibre map's `_oneTimeListeners` (with what they
   close over), growing the heap of a wall for as long as it runs. Here the listeners an
   update registers are taken off the map once that update's promise settles (resolved:
   no error can reject it any more). */
(function () {
  "use strict";

  window.cockpitDropSettledListeners = function (subplot) {
    var proto = subplot && Object.getPrototypeOf(subplot);
    if (!proto || proto.cockpitDropsListeners || typeof proto.updateMap !== "function") {
      return;
    }
    proto.cockpitDropsListeners = true;
    var update = proto.updateMap;
    proto.updateMap = function (calcData, fullLayout, resolve, reject) {
      var map = this.map;
      if (!map || typeof map.once !== "function" || typeof map.off !== "function") {
        return update.apply(this, arguments);
      }
      var added = [], once = map.once;
      var own = Object.prototype.hasOwnProperty.call(map, "once");
      map.once = function (type, listener) {  // while the update registers its own
        if (typeof listener === "function") { added.push([type, listener]); }
        return once.apply(map, arguments);
      };
      function drop() {
        added.forEach(function (pair) { map.off(pair[0], pair[1]); });
        added = [];
      }
      try {
        return update.call(this, calcData, fullLayout,
                           function () { drop(); return resolve.apply(this, arguments); },
                           function () { drop(); return reject.apply(this, arguments); });
      } finally {
        if (own) { map.once = once; } else { delete map.once; }
      }
    };
  };
})();
