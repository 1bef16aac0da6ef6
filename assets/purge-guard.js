/* Plotly must not purge a graph while it is still drawing it.
   A new screen (another area, language or moment) replaces the old one. When the old map
   was still drawing a figure (a tick's update waiting for MapLibre), Dash's Graph purged
   it under the drawing and Plotly's remaining steps threw ("Cannot read properties of
   undefined (reading '_rangeSliderData')", "... (reading 'getStyle')"). Each draw's
   promise is kept on its graph until it settles, and a purge waits for it. Dash's Graph
   loads Plotly on demand: it is wrapped as it is assigned to `window.Plotly`.
   Also: Plotly's map hover asks MapLibre for features of its trace layers while a new
   figure is still adding them (plotly/dash#2706), and MapLibre reports "The layer ... does
   not exist in the map's style" as a map error. After each draw, the map's query skips
   layers that are not in its style (yet or any more): the hover finds nothing there. */
(function () {
  "use strict";
  var DRAWS = ["newPlot", "react", "restyle", "relayout", "update", "extendTraces",
               "prependTraces", "addTraces", "deleteTraces", "moveTraces", "animate"];

  function mapOf(gd) {
    var layout = gd && gd._fullLayout, subplot = layout && layout.map && layout.map._subplot;
    return subplot && subplot.map;
  }

  function keepPlaces(gd) {  /* assets/map-places.js and assets/map-listeners.js */
    var layout = gd && gd._fullLayout, subplot = layout && layout.map && layout.map._subplot;
    if (subplot && window.cockpitKeepPlaces) { window.cockpitKeepPlaces(subplot); }
    if (subplot && window.cockpitDropSettledListeners) {
      window.cockpitDropSettledListeners(subplot);
    }
  }

  function track(Plotly, name) {
    var draw = Plotly[name];
    if (typeof draw !== "function") { return; }
    Plotly[name] = function (gd) {
      var before = name === "react" ? mapOf(gd) : null;
      var drawing = draw.apply(this, arguments);
      keepPlaces(gd);  // the map places its traces once its style has loaded: after this
      if (gd && typeof gd === "object" && drawing && typeof drawing.then === "function") {
        var settled = function () {
          if (gd.cockpitDrawing === drawing) { delete gd.cockpitDrawing; }
          var map = mapOf(gd);
          if (map) {
            map.cockpitDrawn = true;  // its first figure drawn in full
            if (window.cockpitSkipSameData) { window.cockpitSkipSameData(map); }
            keepPlaces(gd);
          }
          guardQueries(gd);
        };
        gd.cockpitDrawing = drawing;
        drawing.then(settled, settled);
        var early = before && before.cockpitDrawn && mapOf(gd) === before;
        var shown = early ? painted(gd, drawing, before) : drawing;
        var waiting = gd.cockpitWaiters;  // the push client waits for this figure
        if (waiting) {
          delete gd.cockpitWaiters;
          waiting.forEach(function (waiter) { waiter(shown); });
        }
        return shown;
      }
      return drawing;
    };
  }

  /* A new figure on a map that is already there counts as drawn once MapLibre has painted
     a frame after it, not once every source of the map has been parsed again and the map
     is idle (Plotly's promise: 0.6-1.3 s a figure in a software-rendered Chromium). Dash's
     Graph draws each figure after the previous one's promise, so that wait held every
     later update of the map. The full draw still guards a purge (`cockpitDrawing`); a
     function in `gd.cockpitWaiters` gets the promise of the next figure drawn (assets/push.js). */
  function painted(gd, drawing, map) {
    return new Promise(function (resolve, reject) {
      var done = false;
      function end() { done = true; map.off("render", paint); }
      function paint() { if (!done) { end(); resolve(gd); } }
      map.on("render", paint);
      drawing.then(paint, function (error) { if (!done) { end(); reject(error); } });
    });
  }

  function guardQueries(gd) {
    var layout = gd._fullLayout, subplot = layout && layout.map && layout.map._subplot;
    var map = subplot && subplot.map;
    if (!map || map.cockpitGuarded || typeof map.queryRenderedFeatures !== "function") {
      return;
    }
    map.cockpitGuarded = true;
    var query = map.queryRenderedFeatures;
    map.queryRenderedFeatures = function (geometry, options) {
      if (options && options.layers) {
        var present = options.layers.filter(function (id) { return !!map.getLayer(id); });
        if (!present.length) { return []; }
        options = Object.assign({}, options, {layers: present});
      }
      return query.call(map, geometry, options);
    };
  }

  function guard(Plotly) {
    if (!Plotly || Plotly.cockpitGuarded) { return; }
    Plotly.cockpitGuarded = true;
    DRAWS.forEach(function (name) { track(Plotly, name); });
    var purge = Plotly.purge;
    Plotly.purge = function (gd) {
      var drawing = gd && gd.cockpitDrawing;
      if (!drawing) { return purge.apply(this, arguments); }
      var later = function () { purge.call(Plotly, gd); };
      drawing.then(later, later);
      return gd;
    };
  }

  var current = window.Plotly;
  if (current) { guard(current); return; }
  Object.defineProperty(window, "Plotly", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = value; guard(value); },
  });
})();
