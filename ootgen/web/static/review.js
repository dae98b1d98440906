// Keyboard shortcuts for the review page. No model text is ever put into the page from here.
(function () {
  "use strict";
  function typing(event) {
    var tag = (event.target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select";
  }
  function go(url) { if (url) { window.location.href = url; } }

  document.addEventListener("DOMContentLoaded", function () {
    var nav = document.getElementById("example-nav");
    var rows = Array.prototype.slice.call(document.querySelectorAll("li.example-row"));
    var selected = rows.length ? 0 : -1;
    function select(i) {
      if (!rows.length) { return; }
      selected = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (row, n) { row.classList.toggle("selected", n === selected); });
      rows[selected].scrollIntoView({block: "nearest"});
    }
    if (rows.length) { select(0); }

    var rejectForm = document.getElementById("reject-form");
    var editForm = document.getElementById("edit-form");
    function open(form, focusId) {
      [rejectForm, editForm].forEach(function (f) { if (f) { f.classList.toggle("open", f === form); } });
      if (form) { document.getElementById(focusId).focus(); }
    }
    var openReject = document.getElementById("open-reject");
    if (openReject) { openReject.addEventListener("click", function () { open(rejectForm, "reject-reason"); }); }
    var openEdit = document.getElementById("open-edit");
    if (openEdit) { openEdit.addEventListener("click", function () { open(editForm, "edit-output"); }); }

    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { open(null); document.activeElement.blur(); return; }
      if (editForm && editForm.classList.contains("open") && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault(); editForm.submit(); return;
      }
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
      var key = event.key;
      if (nav) {
        if (key === "a") { event.preventDefault(); document.getElementById("accept-form").submit(); }
        else if (key === "r") { event.preventDefault(); open(rejectForm, "reject-reason"); }
        else if (key === "e") { event.preventDefault(); open(editForm, "edit-output"); }
        else if (key === "j" || key === "n") { go(nav.dataset.next); }
        else if (key === "k" || key === "p") { go(nav.dataset.previous); }
        else if (key === "u") { go(nav.dataset.list); }
      } else {
        if (key === "j") { select(selected + 1); }
        else if (key === "k") { select(selected - 1); }
        else if (key === "Enter" && selected >= 0) { rows[selected].querySelector("a").click(); }
        else if (key === "/") { event.preventDefault(); document.getElementById("q").focus(); }
      }
    });
  });
})();
