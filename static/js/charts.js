/* Draws the figures that console/lib/charts.py embeds as JSON (data-figure): the Content-Security-Policy allows only
   our own script files, so figures cannot come with an inline script of their own. */
(function () {
  "use strict";
  function draw(root) {
    root.querySelectorAll(".cl-figure[data-figure]").forEach(function (element) {
      if (element.dataset.drawn || typeof window.Plotly === "undefined") return;
      element.dataset.drawn = "1";
      var figure = JSON.parse(element.dataset.figure);
      window.Plotly.newPlot(element, figure.data, figure.layout, figure.config);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // Fragments swapped in by htmx may carry figures too.
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
})();
