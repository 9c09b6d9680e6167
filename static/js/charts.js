/* Draws the figures that console/lib/charts.py embeds as JSON (data-figure): the Content-Security-Policy allows only
   our own script files, so figures cannot come with an inline script of their own.

   Figures on screen are drawn first, then the others one per frame, so that the first screen appears without
   waiting for every figure of a long dashboard (drawing them all at once held the page for about a second). */
(function () {
  "use strict";
  var template = null;

  function sharedTemplate() {
    if (template === null) {
      var element = document.getElementById("cl-figure-template");
      template = element ? JSON.parse(element.textContent) : undefined;
    }
    return template;
  }

  function drawOne(element) {
    if (element.dataset.drawn || typeof window.Plotly === "undefined") return;
    element.dataset.drawn = "1";
    var figure = JSON.parse(element.dataset.figure);
    if (figure.layout && !figure.layout.template && sharedTemplate()) figure.layout.template = sharedTemplate();
    window.Plotly.newPlot(element, figure.data, figure.layout, figure.config);
  }

  function onScreen(element) {
    var box = element.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }

  function draw(root) {
    var pending = Array.prototype.slice.call(root.querySelectorAll(".cl-figure[data-figure]"));
    pending.filter(onScreen).forEach(drawOne);
    var rest = pending.filter(function (element) { return !element.dataset.drawn; });
    (function next() {
      var element = rest.shift();
      if (!element) return;
      drawOne(element);
      window.requestAnimationFrame(next);
    })();
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // Fragments swapped in by htmx may carry figures too.
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
})();
