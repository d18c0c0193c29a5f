// The demo page signs its reader in: it asks the demo's token endpoint for a short-lived
// reader token (a site's own backend would sign it) and hands it to the widget.
(function () {
  "use strict";
  var token = fetch("/demo/token", { method: "POST", headers: { Accept: "application/json" } })
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(function (body) { return body && body.token; });
  function give() {
    token.then(function (value) { if (value) window.Civility.setToken(value); });
  }
  if (window.Civility) give();
  else document.addEventListener("civility:ready", give, { once: true });
})();
