/* An interval never asks its server callback again before the last answer is in.

   Dash drops the answer of a callback that is asked again while it is out, and holds
   every callback that reads its outputs until it is in: a tick slower than its interval
   (a loaded server) showed nothing, ever, and the push client (`configure`, which reads
   a tick output) waited behind ticks that were always out. So each request to a server
   callback that an interval drives pauses that interval (`max_intervals` 0) until its
   answer has been read or has failed; the interval then starts again, its next firing
   one interval later. `disabled` stays with the interval's owner (push.js turns the
   screen's tick off while pushed; the incident panel its own timer); `max_intervals`
   is this gate's: no interval of the app sets it. */
(function () {
  "use strict";
  var out = {};  // interval id -> its callback's requests out

  function set(id, props) {
    try { window.dash_clientside.set_props(id, props); } catch (e) { /* gone: nothing to pause */ }
  }

  /* The ids of the intervals among a request's inputs (grouped inputs are nested). */
  function intervals(inputs, found) {
    if (Array.isArray(inputs)) {
      inputs.forEach(function (item) { intervals(item, found); });
    } else if (inputs && typeof inputs === "object") {
      if (typeof inputs.property === "string") {
        if (inputs.property === "n_intervals" && typeof inputs.id === "string") {
          found.push(inputs.id);
        }
      } else {
        Object.keys(inputs).forEach(function (k) { intervals(inputs[k], found); });
      }
    }
    return found;
  }

  function driving(url, init) {
    if (typeof url !== "string" || url.indexOf("_dash-update-component") < 0 || !init ||
        typeof init.body !== "string" || init.body.indexOf("n_intervals") < 0) { return []; }
    try { return intervals(JSON.parse(init.body).inputs, []); } catch (e) { return []; }
  }

  function hold(ids) {
    ids.forEach(function (id) {
      out[id] = (out[id] || 0) + 1;
      if (out[id] === 1) { set(id, {max_intervals: 0}); }
    });
  }

  function release(ids) {
    ids.forEach(function (id) {
      out[id] -= 1;
      if (out[id] === 0) { set(id, {max_intervals: -1}); }
    });
  }

  var fetchBefore = window.fetch;
  window.fetch = function (url, init) {
    var asked = fetchBefore.apply(this, arguments), ids = driving(url, init), over = false;
    if (!ids.length) { return asked; }
    function answered() { if (!over) { over = true; release(ids); } }
    hold(ids);
    asked.then(function (res) {
      if (res.status !== 200) { answered(); return; }
      var json = res.json;  // Dash reads a 200's body once: the answer is in when it is
      res.json = function () {
        var read = json.apply(res, arguments);
        read.then(answered, answered);
        return read;
      };
    }, answered);
    return asked;
  };

  window.cockpitIntervalsOut = function () { return Object.assign({}, out); };  // probes
})();
