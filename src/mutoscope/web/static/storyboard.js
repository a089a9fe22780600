// The storyboard editor: add, remove and reorder shot cards (drag, or the Earlier/Later buttons for
// keyboards), keep ids, labels and the first shot's transition right, and follow the chosen model.
(function () {
  "use strict";

  var timeline = document.getElementById("timeline");
  var template = document.getElementById("shot-template");
  var status = document.getElementById("timeline-status");
  var data = JSON.parse((document.getElementById("model-options") || {}).textContent || "[]");
  if (!timeline || !template) return;

  function cards() { return Array.prototype.slice.call(timeline.querySelectorAll(".shot-card")); }

  function say(text) { if (status) status.textContent = text; }

  function renumberAttr(el, attr, i) {
    var v = el.getAttribute(attr);
    if (v) el.setAttribute(attr, v.replace(/shot-\d+-/g, "shot-" + i + "-"));
  }

  // Card order is form order: ids, labels, the image field's name and the first card's transition follow it.
  // Each card is as wide as its shot is long (the timeline scrolls sideways); the ends' move buttons are off.
  function renumber() {
    var total = 0;
    var list = cards();
    list.forEach(function (card, i) {
      card.dataset.index = i;
      card.querySelector(".shot-number").textContent = i + 1;
      card.querySelectorAll("[id], [for], [aria-describedby]").forEach(function (el) {
        renumberAttr(el, "id", i);
        renumberAttr(el, "for", i);
        renumberAttr(el, "aria-describedby", i);
      });
      card.querySelector(".shot-up").setAttribute("aria-label", "Move shot " + (i + 1) + " earlier");
      card.querySelector(".shot-down").setAttribute("aria-label", "Move shot " + (i + 1) + " later");
      card.querySelector(".shot-remove").setAttribute("aria-label", "Remove shot " + (i + 1));
      card.querySelector(".shot-image").name = "shot_image_" + i;
      card.querySelector(".shot-transition").disabled = i === 0;
      card.querySelector(".shot-up").disabled = i === 0;
      card.querySelector(".shot-down").disabled = i === list.length - 1;
      var seconds = parseFloat(card.querySelector(".shot-seconds").value || "0");
      card.style.flexBasis = Math.max(16, seconds * 4.5) + "rem";
      total += seconds;
    });
    var shown = document.getElementById("total-seconds");
    if (shown) shown.textContent = String(Math.round(total * 100) / 100);
  }

  function move(card, delta) {
    var list = cards();
    var to = list.indexOf(card) + delta;
    if (to < 0 || to >= list.length) return;
    if (delta < 0) timeline.insertBefore(card, list[to]);
    else timeline.insertBefore(card, list[to].nextSibling);
    renumber();
    say("Shot moved to position " + (to + 1) + " of " + list.length + ".");
  }

  function modelOptions() {
    var model = document.getElementById("model");
    return data.filter(function (m) { return model && m.name === model.value; })[0];
  }

  function fillSelect(select, options, keepEmpty) {
    var current = select.value;
    select.textContent = "";
    if (keepEmpty) select.appendChild(new Option("No move", ""));
    options.forEach(function (o) { select.appendChild(new Option(o.label, o.value, false, o.value === current)); });
  }

  function followModel(card) {
    var m = modelOptions();
    if (!m) return;
    fillSelect(card.querySelector(".shot-seconds"),
               m.seconds.map(function (c) { return { value: c.value, label: c.label }; }), false);
    fillSelect(card.querySelector(".shot-camera"), m.moves.map(function (mv) {
      return { value: mv, label: mv.replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); }) };
    }), true);
  }

  timeline.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    var card = e.target.closest(".shot-card");
    if (!button || !card) return;
    // The pressed button keeps the focus, unless the move took the card to an end and turned it off.
    if (button.classList.contains("shot-up")) { move(card, -1); (button.disabled ? card.querySelector(".shot-down") : button).focus(); }
    else if (button.classList.contains("shot-down")) { move(card, 1); (button.disabled ? card.querySelector(".shot-up") : button).focus(); }
    else if (button.classList.contains("shot-remove")) {
      var list = cards();
      if (list.length === 1) { say("A storyboard needs at least one shot."); return; }
      var next = list[list.indexOf(card) + 1] || list[list.indexOf(card) - 1];
      card.remove();
      renumber();
      say("Shot removed; " + cards().length + " left.");
      next.querySelector("textarea").focus();
    }
  });

  timeline.addEventListener("change", function (e) {
    if (e.target.classList.contains("shot-seconds")) renumber();
  });

  document.getElementById("add-shot").addEventListener("click", function () {
    var card = template.content.firstElementChild.cloneNode(true);
    timeline.appendChild(card);
    followModel(card);
    renumber();
    say("Shot " + cards().length + " added.");
    card.querySelector("textarea").focus();
  });

  var model = document.getElementById("model");
  if (model) model.addEventListener("change", function () { cards().forEach(followModel); renumber(); });

  var dragged = null;
  timeline.addEventListener("dragstart", function (e) {
    dragged = e.target.closest(".shot-card");
    if (!dragged) return;
    dragged.classList.add("dragging");
    if (e.dataTransfer) { e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", "shot"); }
  });
  timeline.addEventListener("dragover", function (e) { if (dragged) e.preventDefault(); });
  timeline.addEventListener("drop", function (e) {
    var target = e.target.closest(".shot-card");
    if (!dragged || !target || target === dragged) return;
    e.preventDefault();
    var list = cards();
    var before = list.indexOf(target) < list.indexOf(dragged);
    timeline.insertBefore(dragged, before ? target : target.nextSibling);
    renumber();
    say("Shot moved to position " + (cards().indexOf(dragged) + 1) + " of " + list.length + ".");
  });
  timeline.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });

  renumber();
})();
