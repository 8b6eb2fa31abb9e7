// The send progress on an issue's admin page (delivery/admin/sending/_progress.html),
// polled from its progress.json view.
(function () {
  // One small request every few seconds while the send runs; none once it is over,
  // none while the tab is hidden.
  var box = document.getElementById("send-progress");
  if (!box || box.dataset.finished === "1") { return; }
  var url = box.dataset.url, every = 1000 * Number(box.dataset.poll || 3);
  function text(id, value) { document.getElementById(id).textContent = value; }
  function eta(seconds) {
    if (seconds === null) { return "unknown"; }
    if (seconds < 90) { return seconds + " s"; }
    if (seconds < 5400) { return Math.round(seconds / 60) + " min"; }
    return (seconds / 3600).toFixed(1) + " h";
  }
  function tick() {
    if (document.hidden) { setTimeout(tick, every); return; }
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (p) {
        document.getElementById("send-progress-bar").value = p.percent;
        text("send-progress-percent", p.percent.toFixed(1) + "%");
        text("send-progress-done", p.done);
        text("send-progress-total", p.total);
        text("send-progress-state", p.state);
        text("send-progress-rate", p.rate.toFixed(1));
        text("send-progress-eta", p.finished ? "none" : eta(p.eta_seconds));
        var warning = document.getElementById("send-warning");
        if (warning) { text("send-warning-text", p.warning || ""); warning.hidden = !p.warning; }
        Object.keys(p.counts).forEach(function (status) {
          var cell = box.querySelector('[data-status="' + status + '"]');
          if (cell) { cell.textContent = p.counts[status]; }
        });
        if (p.finished) {
          box.dataset.finished = "1";
          var done = document.getElementById("send-progress-finished");
          if (done) { done.hidden = false; }
          var controls = document.getElementById("send-controls");
          if (controls) { controls.style.display = "none"; }
          return;
        }
        setTimeout(tick, p.state === "paused" ? every * 3 : every);
      })
      .catch(function () { setTimeout(tick, every * 3); });
  }
  setTimeout(tick, every);
})();
