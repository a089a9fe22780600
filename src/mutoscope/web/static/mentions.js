// @mentions in the create form's prompt: typing "@" lists the cameos and characters this user may put in a
// video (the JSON in #mention-options, from the server). A cameo is written into the prompt as "@handle",
// which is how the API names one; a character is added as a hidden `characters[][id]` field (its name
// goes into the prompt as plain text, so it never reads as some cameo's @handle). Keyboard: Up/Down move,
// Enter or Tab picks, Escape closes. Without this file the prompt still takes @handles typed by hand.
(function () {
  "use strict";
  // An "@" at a word start, as the server reads mentions (not an e-mail address, not "@@").
  var MENTION = /(^|[^\w@.])@([A-Za-z0-9_.]{0,30})$/;
  var MAX_SHOWN = 8;

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("mention-options");
    var box = document.getElementById("prompt");
    var list = document.getElementById("mention-list");
    var chosen = document.getElementById("mention-chosen");
    var status = document.getElementById("mention-status");
    if (!data || !box || !list || !chosen) return;
    var options = JSON.parse(data.textContent);
    var shown = [], active = -1, start = -1;

    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", "mention-list");
    var described = (box.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf("mention-help") < 0) described.push("mention-help");
    box.setAttribute("aria-describedby", described.join(" "));

    function query() {
      if (box.selectionStart !== box.selectionEnd) return null;
      var before = box.value.slice(0, box.selectionStart);
      var m = MENTION.exec(before);
      if (!m) return null;
      start = before.length - m[2].length - 1;
      return m[2].toLowerCase();
    }

    function key(o) { return o.label.toLowerCase().replace(/^@/, ""); }

    function close() {
      list.hidden = true;
      list.innerHTML = "";
      shown = [];
      active = -1;
      box.removeAttribute("aria-activedescendant");
    }

    function highlight(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (li, k) {
        li.setAttribute("aria-selected", k === i ? "true" : "false");
        li.classList.toggle("active", k === i);
      });
      if (i >= 0) {
        box.setAttribute("aria-activedescendant", list.children[i].id);
        list.children[i].scrollIntoView({ block: "nearest" });
      }
    }

    function update() {
      var q = query();
      if (q === null) return close();
      var starts = options.filter(function (o) { return key(o).indexOf(q) === 0; });
      var inside = options.filter(function (o) { return key(o).indexOf(q) > 0; });
      shown = starts.concat(inside).slice(0, MAX_SHOWN);
      if (!shown.length) {
        close();
        status.textContent = options.length ? "No cameo or character matches." : "";
        return;
      }
      list.innerHTML = "";
      shown.forEach(function (o, i) {
        var li = document.createElement("li");
        li.id = "mention-option-" + i;
        li.setAttribute("role", "option");
        li.dataset.kind = o.kind;
        li.dataset.value = o.kind === "cameo" ? o.handle : o.id;
        var name = document.createElement("span");
        name.className = "mention-label";
        name.textContent = o.label;
        var note = document.createElement("span");
        note.className = "mention-note";
        note.textContent = " " + o.note;
        li.appendChild(name);
        li.appendChild(note);
        // mousedown, not click: the textarea keeps its focus and caret.
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      list.hidden = false;
      highlight(0);
      status.textContent = shown.length + (shown.length === 1 ? " suggestion" : " suggestions") +
        ". Up and down to choose, Enter to add.";
    }

    function addChip(o) {
      if (chosen.querySelector('[data-id="' + o.id + '"]')) return;
      var li = document.createElement("li");
      li.className = "chip";
      li.dataset.id = o.id;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "characters[][id]";
      input.value = o.id;
      var label = document.createElement("span");
      label.textContent = o.label;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.setAttribute("data-remove", "");
      remove.setAttribute("aria-label", "Remove " + o.label);
      remove.textContent = "✕";
      li.appendChild(input);
      li.appendChild(label);
      li.appendChild(remove);
      chosen.appendChild(li);
    }

    function pick(i) {
      var o = shown[i];
      if (!o) return;
      var end = box.selectionStart;
      var text = (o.kind === "cameo" ? "@" + o.handle : o.label) + " ";
      box.value = box.value.slice(0, start) + text + box.value.slice(end);
      var caret = start + text.length;
      box.setSelectionRange(caret, caret);
      if (o.kind === "character") addChip(o);
      close();
      status.textContent = o.label + " added.";
      box.focus();
    }

    box.addEventListener("input", update);
    box.addEventListener("click", update);
    box.addEventListener("blur", function () { setTimeout(close, 150); });
    box.addEventListener("keydown", function (e) {
      if (list.hidden || !shown.length) return;
      if (e.key === "ArrowDown") {
        e.preventDefault();
        highlight((active + 1) % shown.length);
      } else if (e.key === "ArrowUp") {
        e.preventDefault();
        highlight((active - 1 + shown.length) % shown.length);
      } else if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        pick(active);
      } else if (e.key === "Escape") {
        e.preventDefault();
        close();
      }
    });
    chosen.addEventListener("click", function (e) {
      var button = e.target.closest("[data-remove]");
      if (button) button.closest("li").remove();
    });
  });
})();
