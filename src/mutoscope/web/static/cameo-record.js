// Record a cameo clip with the camera: the challenge on the page (digits to read aloud, head turns) is
// prompted live while MediaRecorder records, then the clip is put into the upload form's file field and
// the form is submitted, so a recording takes exactly the path of an uploaded file (POST /cameos, the
// same verification as POST /v1/cameos). Without a camera, MediaRecorder or this file, the upload field
// is the way in.
(function () {
  "use strict";
  var MIN_MS = 3000, MAX_MS = 9500;  // the server takes 3-10 s
  var SAY_MS = 2600, TURN_MS = 1300, BACK_MS = 900;

  function pickType() {
    var types = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm", "video/mp4"];
    for (var i = 0; i < types.length; i++) {
      if (MediaRecorder.isTypeSupported(types[i])) return types[i];
    }
    return "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var recorder = document.getElementById("recorder");
    var challenge = document.getElementById("challenge");
    var form = document.getElementById("cameo-form");
    if (!recorder || !challenge || !form) return;
    var noCamera = document.getElementById("no-camera");
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder &&
          window.DataTransfer)) {
      noCamera.textContent = "This browser cannot record here: upload a clip you recorded instead.";
      noCamera.hidden = false;
      return;
    }
    recorder.hidden = false;
    var preview = document.getElementById("preview");
    var prompt = document.getElementById("live-prompt");
    var recordButton = document.getElementById("record-button");
    var stopButton = document.getElementById("stop-button");
    var statusLine = document.getElementById("record-status");
    var words = challenge.dataset.words.split(",").join(", ");
    var turns = challenge.dataset.turns.split(",");
    var media = null, stream = null, chunks = [], timers = [], startedAt = 0;

    // What to show when: read the digits first, then each turn out and back (the order the checks expect).
    var script = [{ at: 0, text: "Say: " + words }];
    var t = SAY_MS;
    turns.forEach(function (turn) {
      script.push({ at: t, text: "Turn your head to your " + turn });
      script.push({ at: t + TURN_MS, text: "Back to the camera" });
      t += TURN_MS + BACK_MS;
    });
    script.push({ at: t, text: "Done: press Stop" });
    var autoStop = Math.min(MAX_MS, t + 1200);

    function later(fn, ms) { timers.push(setTimeout(fn, ms)); }

    function fail(message) {
      statusLine.textContent = message;
      noCamera.textContent = "You can upload a clip you recorded instead.";
      noCamera.hidden = false;
      recordButton.disabled = false;
      stopButton.disabled = true;
    }

    function stopTracks() {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
      preview.srcObject = null;
    }

    function finish() {
      timers.forEach(clearTimeout);
      timers = [];
      stopTracks();
      var type = (media && media.mimeType) || "video/webm";
      var blob = new Blob(chunks, { type: type.split(";")[0] });
      var name = "cameo." + (type.indexOf("mp4") >= 0 ? "mp4" : "webm");
      var transfer = new DataTransfer();
      transfer.items.add(new File([blob], name, { type: blob.type }));
      form.elements.video.files = transfer.files;
      prompt.textContent = "";
      statusLine.textContent = "Uploading " + Math.round(blob.size / 1024) + " KB…";
      form.requestSubmit();
    }

    function stop() {
      stopButton.disabled = true;
      if (media && media.state !== "inactive") media.stop();
    }

    recordButton.addEventListener("click", function () {
      if (!form.elements.handle.reportValidity()) return;
      recordButton.disabled = true;
      statusLine.textContent = "Starting the camera…";
      navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" }, audio: true
      }).then(function (s) {
        stream = s;
        preview.srcObject = s;
        preview.play().catch(function () {});
        var type = pickType();
        media = new MediaRecorder(s, type ? { mimeType: type } : {});
        chunks = [];
        media.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) chunks.push(e.data); });
        media.addEventListener("stop", finish);
        media.start(250);
        startedAt = Date.now();
        recorder.classList.add("recording");
        statusLine.textContent = "Recording";
        script.forEach(function (step) { later(function () { prompt.textContent = step.text; }, step.at); });
        later(function () { stopButton.disabled = false; }, MIN_MS);
        later(stop, autoStop);
      }).catch(function (err) {
        stopTracks();
        fail(err && err.name === "NotAllowedError" ? "The camera or microphone was not allowed."
             : "No camera and microphone could be used (" + (err && err.name || "error") + ").");
      });
    });
    stopButton.addEventListener("click", function () {
      if (Date.now() - startedAt >= MIN_MS) stop();
    });
  });
})();
