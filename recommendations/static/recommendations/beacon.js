// Records a click on a carousel item without delaying navigation: navigator.sendBeacon
// queues the request in the browser, which sends it even as the next page loads.
(function () {
  "use strict";
  var endpoint = "/recommendations/click/";
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
