// Drag and drop reordering on the curation desk. The Up/Down/Move buttons do the same without
// JavaScript; this only sends the same "move" edit (position within a section) after a drop.
(function () {
  "use strict";
  var dragged = null;

  function token() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function clearMarks() {
    document.querySelectorAll(".drop-before, .drop-after, .drop-target").forEach(function (el) {
      el.classList.remove("drop-before", "drop-after", "drop-target");
    });
  }

  function where(event) {
    var list = event.target.closest && event.target.closest("ol.entries");
    if (!list) { return null; }
    var entry = event.target.closest("li.entry");
    if (entry === dragged) { return { list: list, entry: null }; }
    var after = false;
    if (entry) {
      var box = entry.getBoundingClientRect();
      after = event.clientY > box.top + box.height / 2;
    }
    return { list: list, entry: entry, after: after };
  }

  // The 1-based place in the target section the dragged story should take, as digest.move_story
  // counts it (among the section's other included stories).
  function position(target) {
    var others = Array.prototype.filter.call(target.list.querySelectorAll("li.entry"),
      function (li) { return li !== dragged; });
    if (!target.entry) { return others.length + 1; }
    var index = others.indexOf(target.entry);
    return index + 1 + (target.after ? 1 : 0);
  }

  function refresh() {
    if (window.htmx) {
      window.htmx.ajax("GET", window.location.pathname + window.location.search,
        { target: "#desk", select: "#desk", swap: "outerHTML" });
    } else {
      window.location.reload();
    }
  }

  document.addEventListener("dragstart", function (event) {
    var entry = event.target.closest && event.target.closest("li.entry[draggable=true]");
    if (!entry) { return; }
    dragged = entry;
    entry.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", entry.dataset.story);
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearMarks();
  });

  document.addEventListener("dragover", function (event) {
    if (!dragged) { return; }
    var target = where(event);
    if (!target) { return; }
    event.preventDefault();
    clearMarks();
    if (target.entry) {
      target.entry.classList.add(target.after ? "drop-after" : "drop-before");
    } else {
      target.list.classList.add("drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    if (!dragged) { return; }
    var target = where(event);
    if (!target) { return; }
    event.preventDefault();
    var list = target.list;
    var body = new URLSearchParams();
    body.set("csrf_token", token());
    body.set("position", String(position(target)));
    body.set("section", list.dataset.section);
    var url = "/desk/" + encodeURIComponent(list.dataset.week) + "/story/" +
      encodeURIComponent(dragged.dataset.story) + "/move";
    clearMarks();
    fetch(url, { method: "POST", body: body, credentials: "same-origin",
                 headers: { "X-CSRF-Token": token() } })
      .then(refresh, refresh);
  });
})();
