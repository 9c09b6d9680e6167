/* Small page behaviours that markup cannot express without inline script or style, which the
   Content-Security-Policy refuses: selects that submit their form, progress bars sized from data. */
(function () {
  "use strict";
  function wire(root) {
    root.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
      if (select.dataset.wired) return;
      select.dataset.wired = "1";
      select.addEventListener("change", function () { select.form.submit(); });
    });
    root.querySelectorAll("[data-width-percent]").forEach(function (bar) {
      bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.widthPercent) || 0)) + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:load", function (event) { wire(event.target); });
})();
