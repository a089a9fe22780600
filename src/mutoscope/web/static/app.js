// Mutoscope web: progressive enhancement only; every page works without this file.
(function () {
  "use strict";

  var ACTIVE = { queued: true, in_progress: true };
  var baseTitle = document.title;
  var notifyWanted = false;

  // Focus-safe refresh: put `fresh` in place of `old` without ever detaching the element that has focus
  // (a detached element loses focus, and keyboard and screen-reader users land on <body>). Subtrees that
  // do not hold focus are swapped whole; along the path to the focused element, attributes and the
  // siblings around it are updated instead, and the focused element itself keeps its node (and any text
  // typed into it), taking its twin's attributes and, when it has no child elements, its text.
  function syncAttributes(el, from) {
    Array.prototype.slice.call(el.attributes).forEach(function (a) {
      if (!from.hasAttribute(a.name)) el.removeAttribute(a.name);
    });
    Array.prototype.slice.call(from.attributes).forEach(function (a) {
      if (el.getAttribute(a.name) !== a.value) el.setAttribute(a.name, a.value);
    });
  }
  function morph(old, fresh) {
    var active = document.activeElement;
    if (!active || active === document.body || !old.contains(active)) {
      old.replaceWith(fresh);
      return;
    }
    syncAttributes(old, fresh);
    if (old === active) {
      if (!old.firstElementChild && old.textContent !== fresh.textContent) old.textContent = fresh.textContent;
      return;
    }
    var holder = active;
    while (holder.parentNode !== old) holder = holder.parentNode;
    var twin = active.id ? fresh.querySelector("#" + CSS.escape(active.id)) : null;
    var twinTop = twin;
    while (twinTop && twinTop.parentNode !== fresh) twinTop = twinTop.parentNode;
    if (!twinTop || twinTop.nodeName !== holder.nodeName) return; // no counterpart: leave this part as it is
    Array.prototype.slice.call(old.childNodes).forEach(function (n) { if (n !== holder) n.remove(); });
    var before = true;
    Array.prototype.slice.call(fresh.childNodes).forEach(function (n) {
      if (n === twinTop) { before = false; return; }
      if (before) old.insertBefore(n, holder); else old.appendChild(n);
    });
    morph(holder, twinTop);
  }

  // What a person typed or ticked outside the focused field survives a refresh too.
  function formState() {
    var state = [];
    document.querySelectorAll("[data-region] input, [data-region] textarea, [data-region] select").forEach(function (el) {
      if (el === document.activeElement || !(el.id || el.name)) return;
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked !== el.defaultChecked) state.push([el.id, el.name, el.value, "checked", el.checked]);
      } else if (el.type !== "file" && el.type !== "hidden" && el.value !== el.defaultValue && el.tagName !== "SELECT") {
        state.push([el.id, el.name, null, "value", el.value]);
      }
    });
    return state;
  }
  function restore(state) {
    state.forEach(function (s) {
      var el = s[0] ? document.getElementById(s[0]) : null;
      if (!el) {
        var sel = '[name="' + CSS.escape(s[1]) + '"]' + (s[2] !== null ? '[value="' + CSS.escape(s[2]) + '"]' : "");
        el = document.querySelector("[data-region] " + sel);
      }
      if (el) el[s[3]] = s[4];
    });
  }

  var refreshing = false;
  function refreshRegions() {
    if (refreshing) return Promise.resolve();
    refreshing = true;
    return fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var state = formState();
        document.querySelectorAll("[data-region]").forEach(function (el) {
          var next = fresh.querySelector('[data-region="' + el.getAttribute("data-region") + '"]');
          if (next) morph(el, document.importNode(next, true));
        });
        restore(state);
        document.dispatchEvent(new CustomEvent("mutoscope:refreshed"));
      })
      .finally(function () { refreshing = false; });
  }

  // Announcements for screen readers: status changes only, never every percent.
  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region || !text) return;
    region.textContent = text;
  }
  function describe(item) {
    var prompt = item.getAttribute("data-prompt") || "";
    var st = item.getAttribute("data-status");
    if (st === "failed") {
      return "Failed: " + prompt + ". " + (item.getAttribute("data-error") || "") +
        (item.getAttribute("data-error-code") ? " (" + item.getAttribute("data-error-code") + ")" : "");
    }
    return item.getAttribute("data-label") + ": " + prompt;
  }

  function watchedActive() {
    var ids = [];
    document.querySelectorAll("[data-watch]").forEach(function (el) {
      var id = el.getAttribute("data-watch");
      if (ACTIVE[el.getAttribute("data-status")] && ids.indexOf(id) < 0) ids.push(id);
    });
    return ids;
  }

  // The tab's title: progress while something renders, a mark once it is done.
  function setTitle(progress, mark) {
    if (progress !== null) document.title = "(" + progress + "%) " + baseTitle;
    else if (mark) document.title = mark + " " + baseTitle;
  }

  function notify(item) {
    if (!notifyWanted || !("Notification" in window) || Notification.permission !== "granted") return;
    var failed = item.getAttribute("data-status") === "failed";
    try {
      new Notification(failed ? "Video failed" : "Video ready", { body: item.getAttribute("data-prompt") || "" });
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }

  // Live status: poll the small status fragment, change text and attributes in place.
  var statusTimer = null;
  function scheduleStatus(ms) {
    if (statusTimer || !watchedActive().length) return;
    statusTimer = setTimeout(pollStatus, ms || 1500);
  }
  function pollStatus() {
    statusTimer = null;
    var ids = watchedActive();
    if (!ids.length) return;
    fetch("/videos/status?ids=" + encodeURIComponent(ids.join(",")),
          { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var finished = [], said = [], seen = {}, total = 0, active = 0;
        doc.querySelectorAll("li[data-id]").forEach(function (item) {
          var id = item.getAttribute("data-id"), st = item.getAttribute("data-status");
          var pct = parseInt(item.getAttribute("data-progress"), 10) || 0;
          seen[id] = true;
          if (ACTIVE[st]) { total += pct; active += 1; }
          document.querySelectorAll('[data-watch="' + CSS.escape(id) + '"]').forEach(function (el) {
            if (el.getAttribute("data-status") === st) return;
            el.setAttribute("data-status", st);
            if (said.indexOf(id) < 0) { said.push(id); announce(describe(item)); }
            if (!ACTIVE[st] && finished.indexOf(item) < 0) finished.push(item);
          });
          document.querySelectorAll('[data-progress-for="' + CSS.escape(id) + '"]').forEach(function (p) {
            if (p.value !== pct) { p.value = pct; p.textContent = pct + "%"; }
          });
          var badge = item.querySelector(".badge");
          document.querySelectorAll('[data-badge-for="' + CSS.escape(id) + '"]').forEach(function (b) {
            if (badge && b.textContent !== badge.textContent) b.textContent = badge.textContent;
            if (badge && b.className !== badge.className) b.className = badge.className;
          });
          document.querySelectorAll('[data-label-for="' + CSS.escape(id) + '"]').forEach(function (l) {
            var detail = item.getAttribute("data-detail");  // the phase in words: "denoising 5/8 · about 12 s left"
            var text = item.getAttribute("data-label") + (st === "in_progress" ? " · " + pct + "%" + (detail ? " · " + detail : "") : "");
            if (l.textContent !== text) l.textContent = text;
          });
        });
        ids.forEach(function (id) { // deleted meanwhile: stop watching it
          if (!seen[id]) document.querySelectorAll('[data-watch="' + CSS.escape(id) + '"]').forEach(function (el) {
            el.setAttribute("data-status", "gone");
          });
        });
        if (active) setTitle(Math.round(total / active), null);
        else if (finished.length) {
          setTitle(null, finished.some(function (i) { return i.getAttribute("data-status") === "failed"; }) ? "✕" : "✓");
        }
        finished.forEach(notify);
        if (finished.length) return refreshRegions().then(function () { scheduleStatus(); });
        scheduleStatus();
      })
      .catch(function () { statusTimer = setTimeout(pollStatus, 5000); });
  }

  // Regions that are not videos (an export under way) refresh the page's regions while they say data-live.
  var liveTimer = null;
  function scheduleLive() {
    var live = document.querySelector("[data-live]");
    if (!live || liveTimer) return;
    liveTimer = setTimeout(function () {
      liveTimer = null;
      refreshRegions().then(scheduleLive, function () { setTimeout(scheduleLive, 5000); });
    }, parseInt(live.getAttribute("data-live"), 10) || 2000);
  }

  // Forms (or the button that submitted them) that ask first.
  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    var question = (button && button.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  // Hover and focus preview: step through the spritesheet's frames over the thumbnail.
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  function startPreview(thumb) {
    if (reduceMotion || thumb.__timer) return;
    var sprite = thumb.querySelector(".sprite");
    if (!sprite) return;
    var size = (thumb.getAttribute("data-size") || "16x9").split("x");
    var img = new Image();
    thumb.__timer = -1;
    img.onload = function () {
      if (thumb.__timer !== -1) return; // left before it loaded
      var tileW = 160, tileH = Math.max(1, Math.round(160 * size[1] / size[0]));
      var cols = Math.max(1, Math.round(img.naturalWidth / tileW));
      var rows = Math.max(1, Math.round(img.naturalHeight / tileH));
      var n = cols * rows, i = 0;
      sprite.style.backgroundImage = "url(" + JSON.stringify(img.src) + ")";
      sprite.style.backgroundSize = cols * 100 + "% " + rows * 100 + "%";
      sprite.style.aspectRatio = size[0] + " / " + size[1];
      thumb.classList.add("previewing");
      function step() {
        var c = i % cols, r = Math.floor(i / cols) % rows;
        sprite.style.backgroundPosition = (cols > 1 ? c / (cols - 1) * 100 : 0) + "% " +
          (rows > 1 ? r / (rows - 1) * 100 : 0) + "%";
        i = (i + 1) % n;
      }
      step();
      thumb.__timer = setInterval(step, 140);
    };
    img.src = thumb.getAttribute("data-sprite");
  }
  function stopPreview(thumb) {
    if (thumb.__timer && thumb.__timer !== -1) clearInterval(thumb.__timer);
    thumb.__timer = null;
    thumb.classList.remove("previewing");
  }
  function thumbOf(target) {
    var link = target.closest && target.closest(".tile-link");
    return link ? link.querySelector("[data-sprite]") : null;
  }
  ["mouseover", "focusin"].forEach(function (type) {
    document.addEventListener(type, function (e) { var t = thumbOf(e.target); if (t) startPreview(t); });
  });
  ["mouseout", "focusout"].forEach(function (type) {
    document.addEventListener(type, function (e) {
      var t = thumbOf(e.target);
      if (t && !(e.relatedTarget && t.closest(".tile-link").contains(e.relatedTarget))) stopPreview(t);
    });
  });

  // The library's "select all" box.
  document.addEventListener("change", function (e) {
    if (e.target.id !== "select-all") return;
    document.querySelectorAll("input.select-video").forEach(function (box) { box.checked = e.target.checked; });
  });

  // Browser notifications: offered while a job runs, asked for only when the person clicks.
  function setupNotify() {
    var button = document.querySelector("[data-notify]");
    if (!button || !("Notification" in window) || Notification.permission === "denied") return;
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function (p) {
        notifyWanted = p === "granted";
        button.textContent = notifyWanted ? "You will be notified" : "Notifications are blocked";
        button.setAttribute("aria-pressed", notifyWanted ? "true" : "false");
      });
    });
  }

  // Copy buttons: for [data-copy] (a link; with data-copy-absolute, made absolute first) and for every value
  // shown once (.shown-once: a new key or secret), which gets its button here.
  function copyText(button, text) {
    var done = function (ok) {
      var was = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", was);
      button.textContent = ok ? "Copied" : "Select and copy it";
      setTimeout(function () { button.textContent = was; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    else done(false);
  }
  function setupCopy() {
    document.querySelectorAll(".shown-once").forEach(function (el) {
      if (el.nextElementSibling && el.nextElementSibling.classList.contains("copy-button")) return;
      var b = document.createElement("button");
      b.type = "button"; b.className = "small copy-button"; b.textContent = "Copy";
      b.addEventListener("click", function () { copyText(b, el.textContent.trim()); });
      el.insertAdjacentElement("afterend", b);
    });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy]");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    if (b.hasAttribute("data-copy-absolute")) text = new URL(text, location.href).href;
    copyText(b, text);
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy();
    setupNotify();
    scheduleStatus(1000);
    scheduleLive();
  });
  document.addEventListener("mutoscope:refreshed", scheduleLive);
})();
