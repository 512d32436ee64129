// Progressive enhancement only: every action works without this file.
// Keyboard shortcuts press the button carrying data-shortcut="<key>"; the queue table
// reloads itself every data-autorefresh seconds unless the reviewer is typing; a claimed
// task's lease counts down.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    var button = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (button) {
      event.preventDefault();
      button.click();
    }
  });
  var table = document.querySelector("[data-autorefresh]");
  if (table) {
    var seconds = parseInt(table.getAttribute("data-autorefresh"), 10) || 30;
    window.setInterval(function () {
      var active = document.activeElement;
      if (active && (active.tagName === "INPUT" || active.tagName === "SELECT")) return;
      window.location.reload();
    }, seconds * 1000);
  }
  var lease = document.querySelector("[data-lease]");
  if (lease) {
    var ends = Date.now() + (parseInt(lease.getAttribute("data-lease"), 10) || 0) * 1000;
    var tick = function () {
      var left = Math.round((ends - Date.now()) / 1000);
      if (left <= 0) {
        lease.textContent = "Lease ran out: reload to claim again";
        return;
      }
      var minutes = Math.floor(left / 60);
      var seconds = left % 60;
      lease.textContent = "Yours for " + minutes + "m " + (seconds < 10 ? "0" : "") + seconds + "s";
      window.setTimeout(tick, 1000);
    };
    tick();
  }
})();
