// Mutoscope web: progressive enhancement only; every page works without this file.
(function () {
  "use strict";

  // Live regions: while a region says data-live (a job or export under way), re-fetch this page and
  // swap each data-region for its fresh copy. Stops by itself once nothing on the page is live.
  var timer = null;
  function schedule() {
    var live = document.querySelector("[data-live]");
    if (!live || timer) return;
    timer = setTimeout(refresh, parseInt(live.getAttribute("data-live"), 10) || 2000);
  }
  function refresh() {
    timer = null;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-region]").forEach(function (el) {
          var next = fresh.querySelector('[data-region="' + el.getAttribute("data-region") + '"]');
          if (next) el.replaceWith(document.importNode(next, true));
        });
        schedule();
      })
      .catch(function () { timer = setTimeout(refresh, 5000); });
  }

  // Forms that ask first (delete).
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  // The create form: sizes and durations follow the chosen model.
  function fill(select, options, keep) {
    select.innerHTML = "";
    options.forEach(function (value) {
      var o = document.createElement("option");
      o.textContent = value;
      o.selected = value === keep;
      select.appendChild(o);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    schedule();
    var data = document.getElementById("model-options");
    var model = document.getElementById("model");
    if (!data || !model) return;
    var models = JSON.parse(data.textContent);
    model.addEventListener("change", function () {
      var m = models.find(function (x) { return x.name === model.value; });
      if (!m) return;
      var size = document.getElementById("size"), seconds = document.getElementById("seconds");
      fill(size, m.sizes, size.value);
      fill(seconds, m.seconds, seconds.value);
    });
  });
})();
