// Keeps each <details data-keep-open id="..."> as the reader left it, open or closed, when an
// htmx refresh replaces the section around it: what was opened in the page is the reader's
// choice, which the server rendering the fresh fragment cannot know.
(function () {
  "use strict";
  var states = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    states = {};
    event.detail.target.querySelectorAll("details[data-keep-open][id]").forEach(function (details) {
      states[details.id] = details.open;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    Object.keys(states).forEach(function (id) {
      var details = document.getElementById(id);
      if (details) {
        details.open = states[id];
      }
    });
  });
})();

// A long list of choices (the policy editor's countries) gets a filter box: typing hides the
// choices whose label does not contain the text. Without this script the box stays hidden and
// the list scrolls; a checked choice stays visible so the reader sees what is chosen.
(function () {
  "use strict";
  function wire(root) {
    root.querySelectorAll("[data-choice-filter]").forEach(function (fieldset) {
      var box = fieldset.querySelector("input.choice-filter");
      if (!box || box.dataset.wired) {
        return;
      }
      box.dataset.wired = "1";
      box.hidden = false;
      box.addEventListener("input", function () {
        var text = box.value.trim().toLowerCase();
        fieldset.querySelectorAll("label.check").forEach(function (label) {
          var input = label.querySelector("input");
          var match = !text || label.textContent.toLowerCase().indexOf(text) !== -1;
          label.hidden = !(match || (input && input.checked));
        });
      });
      // Enter in the filter box must not submit the rule form.
      box.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    wire(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    wire(event.detail.target);
  });
})();
// The launch checklist's Print button (no inline handlers: the Content-Security-Policy forbids them).
document.addEventListener("click", function (event) {
  "use strict";
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
