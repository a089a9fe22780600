// A storyboard video's page: its shots under the player. Pressing a shot plays from its start; the playing
// shot is marked; "Remix from here" picks that shot in the remix form and puts its prompt there to edit.
(function () {
  "use strict";

  var strip = document.getElementById("shot-strip");
  var player = document.getElementById("player");
  if (!strip) return;
  var segs = Array.prototype.slice.call(strip.querySelectorAll(".shot-seek"));

  function mark() {
    if (!player) return;
    var t = player.currentTime;
    segs.forEach(function (b) {
      var on = t >= parseFloat(b.dataset.start) && t < parseFloat(b.dataset.end);
      if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
  }

  strip.addEventListener("click", function (e) {
    var seek = e.target.closest(".shot-seek");
    if (seek && player) {
      // A hair past the boundary, so the frame shown is the shot's own first frame.
      player.currentTime = parseFloat(seek.dataset.start) + 0.001;
      mark();
      return;
    }
    var remix = e.target.closest(".shot-remix");
    var select = document.getElementById("remix-shot");
    var prompt = document.getElementById("remix-prompt");
    if (remix && select && prompt) {
      select.value = remix.dataset.shot;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      prompt.focus();
      prompt.scrollIntoView({ block: "center" });
    }
  });

  var select = document.getElementById("remix-shot");
  if (select) select.addEventListener("change", function () {
    var option = select.selectedOptions[0];
    var prompt = document.getElementById("remix-prompt");
    if (option && option.dataset.prompt && prompt) prompt.value = option.dataset.prompt;
  });

  if (player) { player.addEventListener("timeupdate", mark); player.addEventListener("seeked", mark); }
  // Each shot as wide as it is long: its seconds are its share of the strip.
  segs.forEach(function (b) {
    var li = b.closest(".shot-seg");
    li.style.flexGrow = String(parseFloat(li.dataset.seconds) || 1);
  });
})();
