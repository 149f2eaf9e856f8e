// "Not interested": a carousel card's dismiss button tells the server (which leaves the item
// out of this shopper's lists from now on) and takes the card off the page, no reload.
// Keyboard users keep their place: focus moves to the next card's button (or the list).
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = (script && script.getAttribute("data-endpoint")) || "/api/recommendations/feedback/";
  var token = script && script.getAttribute("data-csrf");

  function csrfToken() {
    if (token) return token;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function announce(section, text) {
    var status = section.querySelector(".rec-status");
    if (!status) {
      status = document.createElement("p");
      status.className = "rec-status";
      status.setAttribute("role", "status");
      section.appendChild(status);
    }
    status.textContent = text;
  }

  function dismiss(button) {
    var card = button.closest("li");
    var section = button.closest("section.rec-carousel");
    if (!card || button.disabled) return;
    button.disabled = true;
    var name = (button.getAttribute("aria-label") || "").replace(/^Not interested in /, "");
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({
        item: Number(button.getAttribute("data-rec-dismiss")),
        kind: "not_interested",
        source: button.getAttribute("data-rec-source") || ""
      })
    }).catch(function () { /* the card goes anyway: the shopper said no */ });
    var next = card.nextElementSibling || card.previousElementSibling;
    var track = card.parentNode;
    card.remove();
    if (section) announce(section, "Removed " + name + ". We won't show it again.");
    var target = next && next.querySelector("button.rec-dismiss");
    if (target) {
      target.focus();
    } else if (track && track.focus) {
      track.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-rec-dismiss]");
    if (!button) return;
    event.preventDefault();
    dismiss(button);
  });
})();
