// The edit and remix forms' strength control: its value shown beside it, and, in the edit form, until it is
// moved, the chosen model's own.
(function () {
  "use strict";

  // Two decimals at most, no trailing zeros: 0.7, 0.55, 1, as the server writes them.
  function shows(range, shown) {
    function show() { shown.textContent = String(Number(Number(range.value).toFixed(2))); }
    show();
    return show;
  }

  function setup() {
    var remix = document.getElementById("remix-strength");
    var remixShown = document.getElementById("remix-strength-value");
    if (remix && remixShown) remix.addEventListener("input", shows(remix, remixShown));

    var range = document.getElementById("edit-strength");
    var shown = document.getElementById("edit-strength-value");
    if (!range || !shown) return;
    var moved = false;
    var show = shows(range, shown);
    range.addEventListener("input", function () { moved = true; show(); });

    var model = document.getElementById("edit-model");
    var data = document.getElementById("edit-strengths");
    var named = document.getElementById("edit-strength-default");
    if (!model || !data) return;
    var strengths = JSON.parse(data.textContent);
    model.addEventListener("change", function () {
      var own = strengths[model.value];
      if (own === undefined) return;
      if (named) named.textContent = String(own);
      if (!moved) { range.value = String(own); show(); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
