/* Client-side helpers of the cockpit: the wall clock in the city's time zone. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  cockpit: {
    clock: function (_n, tz) {
      try {
        return new Date().toLocaleString("sv-SE", {timeZone: tz || undefined, hour12: false});
      } catch (e) {
        return new Date().toLocaleString("sv-SE", {hour12: false});
      }
    },
  },
});
