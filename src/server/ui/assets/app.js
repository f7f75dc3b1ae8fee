// mesosync dashboard: live updates without reload, and the action buttons.
// Every second (while the tab is visible) ask /ui/generation whether the status
// changed; if it did, fetch this page again and replace only the [data-live] regions
// whose content differs: no flicker, focus and scroll kept. Without JavaScript the
// pages still work (reload to refresh; the action form posts normally).
"use strict";
(function () {
  var generation = document.body.getAttribute("data-generation");
  var busy = false;
  var indicator = function (text) {
    var el = document.querySelector(".live-indicator");
    if (el && el.textContent !== text) el.textContent = text;
  };

  function swap(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    next.querySelectorAll("[data-live][id]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (old && old.innerHTML !== fresh.innerHTML) old.innerHTML = fresh.innerHTML;
    });
    generation = next.body.getAttribute("data-generation");
    document.body.setAttribute("data-generation", generation);
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch("/ui/generation", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (g) {
        indicator("");
        if (g.trim() === generation) return null;
        return fetch(window.location.href, { cache: "no-store" })
          .then(function (r) { return r.text(); })
          .then(swap);
      })
      .catch(function () { indicator("controller unreachable; retrying"); })
      .then(function () { busy = false; });
  }
  setInterval(poll, 1000);
  document.addEventListener("visibilitychange", poll);

  // The action form: post with fetch and show the answer in place.
  var form = document.querySelector("form.actions");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = event.submitter || form.querySelector("button");
      var url = button.getAttribute("formaction") || form.getAttribute("action");
      var body = new URLSearchParams(new FormData(form));
      var result = document.getElementById("action-result");
      fetch(url, { method: "POST", body: body, credentials: "omit" })
        .then(function (r) { return r.text().then(function (t) { return r.status + " " + t; }); })
        .then(function (text) { result.textContent = text.trim(); })
        .catch(function (e) { result.textContent = "failed: " + e; });
    });
  }
})();
