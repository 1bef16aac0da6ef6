/* Each map trace keeps its place among the map's layers from one figure to the next.
   Plotly (`fillBelowLookup`) puts a trace's layers under the style layer its `below`
   names, and takes two traces under the same layer as placed nowhere: it removes and adds
   again their layers on every figure, so MapLibre tiles their sources again and draws the
   map twice per update (at 50 events/s the page spent its time in those draws). Each of
   our traces names its own slot (dashboard/screen/mapfig.py `slot`), but Plotly does not
   read `below` of a trace it does not draw (hidden, or a scatter without points) and gives
   it the place of the trace before it. Here such a trace gets the `below` it was given,
   and a trace alone in its place keeps the place its layers are in. */
(function () {
  "use strict";

  window.cockpitKeepPlaces = function (subplot) {
    var proto = subplot && Object.getPrototypeOf(subplot);
    if (!proto || proto.cockpitKeepsPlaces || typeof proto.fillBelowLookup !== "function") {
      return;
    }
    proto.cockpitKeepsPlaces = true;
    var fill = proto.fillBelowLookup;
    proto.fillBelowLookup = function (calcdata) {
      var traces = this.traceHash || {}, placed = {};
      Object.keys(traces).forEach(function (uid) { placed[uid] = traces[uid].below; });
      var result = fill.apply(this, arguments);
      var lookup = this.belowLookup, shared = {};
      (calcdata || []).forEach(function (calc) {
        var trace = calc && calc[0] && calc[0].trace;
        var asked = trace && trace._input && trace._input.below;
        if (trace && typeof trace.below !== "string" && typeof asked === "string") {
          lookup["trace-" + trace.uid] = asked;
        }
      });
      Object.keys(lookup).forEach(function (key) {
        shared[lookup[key]] = (shared[lookup[key]] || 0) + 1;
      });
      Object.keys(placed).forEach(function (uid) {
        var below = lookup["trace-" + uid];
        traces[uid].below = below !== undefined && shared[below] === 1 ? placed[uid] : null;
      });
      return result;
    };
  };
})();
