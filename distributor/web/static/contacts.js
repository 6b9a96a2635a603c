// The segment builder: how many contacts the filter matches, and who, fetched again as the
// filter is typed. Without this script the Preview button shows the same.
(function () {
  "use strict";
  var input = document.querySelector("textarea[data-preview-url]");
  var target = document.getElementById("segment-preview");
  if (!input || !target || !window.fetch) {
    return;
  }
  var url = input.getAttribute("data-preview-url");
  var timer = null;
  var asked = 0;

  function refresh() {
    var number = ++asked;
    fetch(url + "?filter=" + encodeURIComponent(input.value), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        // An older answer arriving after a newer one is dropped.
        if (html !== null && number === asked) {
          target.innerHTML = html;
        }
      })
      .catch(function () {});
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 350);
  });
})();
