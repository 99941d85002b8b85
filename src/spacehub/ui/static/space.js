// The Space page's live parts, in plain JavaScript (no library): the stage badge, the CPU and memory chart and the
// logs panel, all fed by server-sent events (EventSource reconnects by itself). The page works without it; only the
// live updates stop.
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
    usage(data.stage === "RUNNING");
    // A new build or start: its log is a new stream (the old one said "end").
    if (refollow && was && was !== data.stage && /BUILDING|APP_STARTING/.test(data.stage)) refollow();
  }
  var refollow = null;

  // The chart: the last 60 samples (about a minute) of CPU and memory, each a polyline of its own inline SVG, scaled
  // to a little above the highest sample shown (CPU as a share of the flavor's cores). Its stream is open only while
  // the Space runs.
  var panel = document.getElementById("usage");
  var metrics = null, samples = [];
  var MIB = 1048576;
  function size(n) { return n >= 1024 * MIB ? (n / (1024 * MIB)).toFixed(1) + " GiB" : Math.round(n / MIB) + " MiB"; }
  function plot(id, values, floor) {
    var top = Math.max(floor, 1.25 * Math.max.apply(null, values.concat([0])));
    var n = values.length;
    document.getElementById(id).setAttribute("points", values.map(function (v, i) {
      var x = (300 * (60 - n + i)) / 59;  // the newest sample at the right edge
      return x.toFixed(1) + "," + (58 - (56 * Math.max(v, 0)) / top).toFixed(1);
    }).join(" "));
    return top;
  }
  function draw() {
    var cpu = plot("usage-cpu", samples.map(function (m) { return m.cpu_usage_pct; }), 5);
    var mem = plot("usage-mem", samples.map(function (m) { return m.memory_used_bytes; }), 64 * MIB);
    document.getElementById("usage-cpu-scale").textContent = (cpu < 10 ? cpu.toFixed(1) : Math.round(cpu)) + "%";
    document.getElementById("usage-mem-scale").textContent = size(mem);
  }
  function usage(running) {
    if (!panel || !window.EventSource) return;
    panel.dataset.running = running ? "true" : "false";
    var now = document.getElementById("usage-now");
    if (!running) {
      if (metrics) { metrics.close(); metrics = null; }
      samples = [];
      draw();
      now.textContent = "The app is not running: there is no usage to show.";
      return;
    }
    if (metrics) return;
    now.textContent = "Waiting for the first sample…";
    metrics = new EventSource(panel.dataset.metrics);
    metrics.addEventListener("metric", function (e) {
      var m = JSON.parse(e.data);
      samples.push(m);
      if (samples.length > 60) samples.shift();
      panel.dataset.samples = String(Number(panel.dataset.samples || 0) + 1);
      draw();
      now.textContent = "CPU " + m.cpu_usage_pct.toFixed(1) + "% of " + m.cpu_millicores / 1000 + " cores · memory " +
        size(m.memory_used_bytes) + " of " + size(m.memory_total_bytes);
    });
  }
  usage(stage === "RUNNING");

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
