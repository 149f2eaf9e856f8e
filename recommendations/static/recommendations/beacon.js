// Records a click on a carousel item without delaying navigation: navigator.sendBeacon
// queues the request in the browser, which sends it even as the next page loads.
// The endpoint is reversed by the page ({% recommendations_assets %} puts it on this
// script's tag as data-rec-click-url), so it follows wherever the shop mounts the app's URLs.
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-rec-click-url]");
  // A page that includes the script by hand, without the attribute: the default mount.
  var endpoint = (script && script.getAttribute("data-rec-click-url")) || "/recommendations/click/";
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-rec-item]");
    if (!link) return;
    var data = new FormData();
    data.append("item", link.getAttribute("data-rec-item"));
    data.append("source", link.getAttribute("data-rec-source") || "");
    if (navigator.sendBeacon) {
      navigator.sendBeacon(endpoint, data);
    } else {
      fetch(endpoint, { method: "POST", body: data, keepalive: true, credentials: "same-origin" });
    }
  }, { capture: true });
})();
