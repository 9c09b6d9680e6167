/* Dashboard drill-down: every Plotly bar or point carries the URL of the rows it counts in `customdata`;
   a click opens it. The same links are in the tables under each figure, so nothing depends on this script. */
(function () {
  "use strict";
  function bind(graph) {
    if (graph.dataset.drilldown || typeof graph.on !== "function") return;
    graph.dataset.drilldown = "1";
    graph.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var url = point && point.customdata;
      if (typeof url === "string" && url.charAt(0) === "/") window.location.assign(url);
    });
  }
  function bindAll() {
    document.querySelectorAll(".js-plotly-plot").forEach(bind);
  }
  // Plotly draws asynchronously; bind once the page has loaded, and again for any figure drawn later.
  window.addEventListener("load", bindAll);
  document.addEventListener("plotly_afterplot", bindAll);
  setTimeout(bindAll, 0);
})();
