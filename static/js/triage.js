/* Keyboard triage on a queue page: j/k move the row focus, x selects, a assigns to me, r resolves, o/Enter opens.
   Every action is also a plain link or form button, so the page works without this script. */
(function () {
  "use strict";
  // Filter chips (status, priority, recency) and the category list apply as soon as they change; text and date
  // fields apply with Enter or the Apply button, so that typing is never interrupted.
  var filters = document.querySelector("form[data-autosubmit]");
  if (filters) {
    filters.addEventListener("change", function (event) {
      var field = event.target;
      if (field.matches("input[type=checkbox], input[type=radio], select")) filters.requestSubmit();
    });
  }
  var table = document.querySelector("[data-triage-table]");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]"));
  var form = document.getElementById("bulk-form");
  var current = -1;

  function focusRow(index) {
    if (!rows.length) return;
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) rows[current].classList.remove("table-active");
    current = index;
    rows[current].classList.add("table-active");
    rows[current].focus({ preventScroll: false });
  }

  function checkbox(row) {
    return row ? row.querySelector("input[type=checkbox][name=selected]") : null;
  }

  function submitAction(key) {
    if (!form) return;
    var button = form.querySelector("button[data-shortcut='" + key + "']");
    if (!button) return;
    var anyChecked = rows.some(function (row) { var box = checkbox(row); return box && box.checked; });
    // Without a selection the action applies to the focused row, the way a mail client's shortcuts do.
    if (!anyChecked && current >= 0) {
      var box = checkbox(rows[current]);
      if (box) box.checked = true;
    }
    form.requestSubmit(button);
  }

  rows.forEach(function (row, index) {
    row.addEventListener("click", function () { focusRow(index); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    // Typing in a filter box or form field must never trigger a shortcut.
    if (target.closest("select, textarea, [contenteditable]")) return;
    if (target.matches("input") && target.type !== "checkbox") return;
    if (target.closest("a, button") && event.key === "Enter") return;
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current < 0 ? 0 : current - 1); break;
      case "x": {
        var box = checkbox(rows[current]);
        if (box) box.checked = !box.checked;
        break;
      }
      case "a": submitAction("a"); break;
      case "r": submitAction("r"); break;
      case "o":
      case "Enter":
        if (current >= 0) window.location.href = rows[current].dataset.href;
        break;
      default: return;
    }
    event.preventDefault();
  });
})();
