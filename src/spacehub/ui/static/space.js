// The Space page's live parts, in plain JavaScript (no library): the stage badge and the logs panel, both fed by
// server-sent events (EventSource reconnects by itself). The page works without it; only the live updates stop.
(function () {
  "use strict";
  var script = document.getElementById("space-script");
  var badge = document.getElementById("stage");
  var errorBox = document.getElementById("stage-error");
  var frame = document.getElementById("app-frame");
  var stage = badge ? badge.dataset.stage : null;

  function showStage(data) {
    if (!badge) return;
    var was = stage;
    stage = data.stage;
    badge.className = "badge " + data.stage;
    badge.dataset.stage = data.stage;
    badge.textContent = data.stage.replace(/_/g, " ").toLowerCase();
    if (errorBox) {
      errorBox.textContent = data.errorMessage || "";
      errorBox.hidden = !data.errorMessage;
    }
    // The app came up: load it again in the frame (it showed the "building" page until now).
    if (frame && data.stage === "RUNNING" && was && was !== "RUNNING") frame.src = frame.src;
    // A new build or start: its log is a new stream (the old one said "end").
    if (refollow && was && was !== data.stage && /BUILDING|APP_STARTING/.test(data.stage)) refollow();
  }
  var refollow = null;

  if (script && window.EventSource) {
    var events = new EventSource(script.dataset.events);
    events.addEventListener("stage", function (e) { showStage(JSON.parse(e.data)); });
  }

  var logs = document.getElementById("logs");
  if (!logs || !window.EventSource) return;
  var current = null, currentKind = "build";
  refollow = function () { follow(currentKind); };
  function follow(kind) {
    currentKind = kind;
    if (current) current.close();
    logs.textContent = "";
    document.querySelectorAll(".log-kind").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.kind === kind ? "true" : "false");
    });
    current = new EventSource(logs.dataset.base + kind);
    current.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.appendChild(document.createTextNode(line.text + "\n"));
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    });
    current.addEventListener("end", function () { current.close(); });
  }
  document.querySelectorAll(".log-kind").forEach(function (b) {
    b.addEventListener("click", function () { follow(b.dataset.kind); });
  });
  follow("build");
})();
