// The create form: choices follow the chosen model, and a first frame can be dropped in with a preview.
(function () {
  "use strict";

  // Rebuild a radio group from the model's choices, each disabled with its reason when the plan says no,
  // keeping the current pick when the new model offers it.
  function fill(name, options) {
    var list = document.querySelector('[data-choices="' + name + '"]');
    if (!list) return;
    var current = (document.querySelector('input[name="' + name + '"]:checked') || {}).value;
    var keep = options.some(function (c) { return c.value === current && c.allowed; });
    var first = true;
    list.textContent = "";
    options.forEach(function (c) {
      var label = document.createElement("label");
      label.className = "choice" + (c.allowed ? "" : " disabled");
      var input = document.createElement("input");
      input.type = "radio";
      input.name = name;
      input.value = c.value;
      input.disabled = !c.allowed;
      input.checked = c.allowed && (keep ? c.value === current : first);
      if (c.allowed) first = false;
      var text = document.createElement("span");
      text.textContent = c.label;
      label.appendChild(input);
      label.appendChild(text);
      if (c.reason) {
        var why = document.createElement("span");
        why.className = "why";
        why.textContent = "(" + c.reason + ")";
        label.appendChild(why);
      }
      list.appendChild(label);
    });
  }

  function setupModels() {
    var data = document.getElementById("model-options");
    var model = document.getElementById("model");
    if (!data || !model) return;
    var models = JSON.parse(data.textContent);
    model.addEventListener("change", function () {
      var m = models.find(function (x) { return x.name === model.value; });
      if (!m) return;
      fill("size", m.sizes);
      fill("seconds", m.seconds);
      moves(m.moves || []);
      soundtrack(!!m.audio);
    });
  }

  // The soundtrack field only for a model that can be generated to one; disabled while hidden, so a file
  // chosen for another model is not sent.
  function soundtrack(on) {
    var box = document.getElementById("audio-reference-field"), input = document.getElementById("audio_reference");
    if (!box || !input) return;
    box.hidden = !on;
    input.disabled = !on;
  }

  // The camera moves follow the model too; the current move stays when the new model offers it.
  function moves(list) {
    var select = document.getElementById("camera");
    if (!select) return;
    var current = select.value;
    select.textContent = "";
    select.appendChild(new Option("No move", ""));
    list.forEach(function (mv) {
      var label = mv.replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); });
      select.appendChild(new Option(label, mv, false, mv === current));
    });
  }

  // An example fills the prompt box (its full text; the button shows the start of it).
  function setupExamples() {
    var box = document.getElementById("examples"), prompt = document.getElementById("prompt");
    if (!box || !prompt) return;
    box.addEventListener("click", function (e) {
      var b = e.target.closest(".example");
      if (!b) return;
      prompt.value = b.getAttribute("data-example");
      prompt.dispatchEvent(new Event("input", { bubbles: true }));
      prompt.focus();
    });
  }

  function setupDropzone() {
    var zone = document.getElementById("dropzone");
    var input = document.getElementById("input_reference");
    if (!zone || !input) return;
    var preview = document.getElementById("drop-preview"), img = document.getElementById("drop-preview-img");
    var name = document.getElementById("drop-preview-name"), message = document.getElementById("drop-message");
    var url = null;
    function show() {
      var file = input.files && input.files[0];
      if (url) { URL.revokeObjectURL(url); url = null; }
      if (!file) { preview.hidden = true; img.removeAttribute("src"); return; }
      if (!/^image\//.test(file.type)) {
        input.value = "";
        preview.hidden = true;
        message.textContent = "That file is not an image; choose a PNG, JPEG or WebP.";
        return;
      }
      url = URL.createObjectURL(file);
      img.src = url;
      name.textContent = file.name;
      preview.hidden = false;
      message.textContent = "First frame: " + file.name;
    }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) {
        if (!e.dataTransfer || Array.prototype.indexOf.call(e.dataTransfer.types, "Files") < 0) return;
        e.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      zone.classList.remove("dragging");
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      e.preventDefault();
      var dt = new DataTransfer();
      dt.items.add(e.dataTransfer.files[0]);
      input.files = dt.files;
      show();
    });
    document.getElementById("drop-clear").addEventListener("click", function () {
      input.value = "";
      show();
      message.textContent = "Image removed.";
      input.focus();
    });
  }

  setupModels();
  setupDropzone();
  setupExamples();
})();
