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

// The launch checklist's Print button (no inline handlers: the Content-Security-Policy forbids them).
document.addEventListener("click", function (event) {
  "use strict";
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
