/* The case page's actions answer in place (htmx). A refused action answers 400 (the form's errors) or 409 (the case
   changed meanwhile, shown as it is now): htmx swaps neither by default, but both carry the fragment to show. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ((status === 400 || status === 409) && event.detail.target && event.detail.target.id === "case-live") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
