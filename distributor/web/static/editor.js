// The release editor's live parts: the preview as the officer types, the audience count and
// the embargo read back while scheduling, and the countdown to an embargo. Every form works
// without this script; it only saves the round trips.
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;
  document.documentElement.classList.add("js");

  function debounce(action, wait) {
    var timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(action, wait);
    };
  }

  function csrfOf(form) {
    var field = form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  // POST the form's text fields (never a chosen file) and read the JSON answer.
  function postForm(url, form) {
    var data = new FormData(form);
    data.delete("new_file");
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfOf(form), Accept: "application/json" },
    }).then(function (response) {
      // A login that has run out sends the request to the login form.
      if (response.redirected || response.url.indexOf("/login") !== -1) {
        throw new Error("your login has run out: log in again in another tab, then type on");
      }
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      return response.json();
    });
  }

  // The problem shown beside a field (the list after it), and its aria-invalid.
  function showError(key, message) {
    var list = document.querySelector('[data-error-for="' + key + '"]');
    if (!list) {
      return;
    }
    list.replaceChildren();
    var control = document.querySelector('[aria-describedby="error-' + key + '"]');
    if (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
      list.hidden = false;
      if (control) control.setAttribute("aria-invalid", "true");
    } else {
      list.hidden = true;
      if (control) control.removeAttribute("aria-invalid");
    }
  }

  function fillList(box, items) {
    var list = box.querySelector("ul");
    list.replaceChildren();
    items.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    box.hidden = items.length === 0;
  }

  // --- the editor ---------------------------------------------------------------------------

  function setUpEditor(form) {
    var status = document.getElementById("preview-status");
    var subject = document.getElementById("preview-subject");
    var text = document.getElementById("preview-text");
    var frame = document.getElementById("preview-html");
    var frameForm = document.getElementById("preview-post");
    var problems = document.getElementById("preview-problems");
    var warnings = document.getElementById("preview-warnings");
    var asked = 0;

    // The HTML goes to the sandboxed frame by a form post: the frame's page comes with its
    // own policy (no script at all), which a document written into it would not have.
    function refreshFrame() {
      var data = new FormData(form);
      frameForm.replaceChildren();
      data.forEach(function (value, name) {
        if (typeof value !== "string") return;
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = name;
        field.value = value;
        frameForm.appendChild(field);
      });
      frameForm.submit();
    }

    function refresh() {
      var number = ++asked;
      status.textContent = "Updating…";
      postForm(form.dataset.previewUrl, form)
        .then(function (facts) {
          if (number !== asked) return;
          subject.textContent = facts.subject;
          text.textContent = facts.text;
          fillList(problems, facts.problems);
          fillList(warnings, facts.warnings);
          showError("preview_as", facts.errors.preview_as || "");
          showError("organisation", facts.errors.organisation || "");
          refreshFrame();
          status.textContent = "Up to date";
        })
        .catch(function (error) {
          if (number === asked) status.textContent = "Preview not updated: " + error.message;
        });
    }

    var later = debounce(refresh, DEBOUNCE_MS);
    form.addEventListener("input", function (event) {
      if (event.target.type !== "file") later();
    });
    form.addEventListener("change", function (event) {
      if (event.target.type === "radio" || event.target.type === "checkbox") later();
    });

    document.querySelectorAll("[role=tab]").forEach(function (tab) {
      tab.addEventListener("click", function () {
        var html = tab.dataset.tab === "html";
        frame.hidden = !html;
        text.hidden = html;
        document.querySelectorAll("[role=tab]").forEach(function (other) {
          other.setAttribute("aria-selected", String(other === tab));
        });
      });
    });

    document.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.addEventListener("click", function () {
        var key = button.dataset.addRow;
        var rows = document.getElementById(key + "-rows");
        var template = document.getElementById(key + "-template");
        var number = rows.querySelectorAll("[data-row]").length + 1;
        var holder = document.createElement("div");
        holder.innerHTML = template.innerHTML.split("__n__").join(String(number));
        var row = holder.firstElementChild;
        rows.appendChild(row);
        var first = row.querySelector("input, textarea");
        if (first) first.focus();
      });
    });

    refresh();
  }

  // --- scheduling ---------------------------------------------------------------------------

  function setUpSchedule(form) {
    var count = document.getElementById("audience-count");
    var leftOut = document.getElementById("left-out");
    var readings = document.getElementById("readings");
    var countdown = document.getElementById("embargo-countdown");
    var keys = ["audience", "embargo", "zone", "prebrief_at", "other_zone_1", "other_zone_2"];
    var asked = 0;

    function showReadings(items) {
      readings.replaceChildren();
      items.forEach(function (reading) {
        var row = document.createElement("div");
        if (reading.own) row.className = "own";
        var term = document.createElement("dt");
        term.textContent = reading.zone + (reading.own ? " (yours)" : "");
        var value = document.createElement("dd");
        value.textContent = reading.text;
        row.appendChild(term);
        row.appendChild(value);
        readings.appendChild(row);
      });
    }

    function check() {
      var number = ++asked;
      postForm(form.dataset.checkUrl, form)
        .then(function (facts) {
          if (number !== asked) return;
          count.textContent = facts.recipients === null ? "–" : facts.recipients.toLocaleString("en");
          leftOut.textContent = facts.left_out ? ", " + facts.left_out.toLocaleString("en") + " left out" : "";
          showReadings(facts.readings);
          countdown.textContent = facts.countdown;
          keys.forEach(function (key) {
            showError(key, facts.errors[key] || "");
          });
        })
        .catch(function () {
          /* the Check button still works */
        });
    }

    function showPrebrief() {
      var chosen = form.querySelector("input[name=prebrief]:checked");
      var details = form.querySelector("[data-prebrief-details]");
      if (details) details.hidden = !chosen || chosen.value === "none";
      var at = document.getElementById("prebrief_at");
      if (at) at.closest(".field").hidden = !chosen || chosen.value !== "at";
    }

    var later = debounce(check, DEBOUNCE_MS);
    form.addEventListener("input", later);
    form.addEventListener("change", function () {
      showPrebrief();
      later();
    });
    showPrebrief();
    check();
  }

  // --- countdowns ---------------------------------------------------------------------------

  function spell(seconds) {
    var span = Math.abs(Math.round(seconds));
    var days = Math.floor(span / 86400);
    var hours = Math.floor((span % 86400) / 3600);
    var minutes = Math.floor((span % 3600) / 60);
    var secs = span % 60;
    var parts = [];
    if (days) parts.push(days + " d");
    if (days || hours) parts.push(hours + " h");
    if (days || hours || minutes) parts.push(minutes + " min");
    parts.push(secs + " s");
    var text = parts.join(" ");
    return seconds > 0 ? "in " + text : "lifted " + text + " ago";
  }

  function startCountdowns() {
    var clocks = document.querySelectorAll("[data-countdown-to]");
    if (!clocks.length) return;
    // The server's clock decides; the browser's may be off.
    clocks.forEach(function (clock) {
      clock.dataset.offset = String(Date.parse(clock.dataset.now) - Date.now());
    });
    function tick() {
      clocks.forEach(function (clock) {
        var now = Date.now() + Number(clock.dataset.offset);
        clock.textContent = spell((Date.parse(clock.dataset.countdownTo) - now) / 1000);
      });
    }
    tick();
    window.setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var editor = document.getElementById("editor");
    if (editor) setUpEditor(editor);
    var schedule = document.getElementById("schedule");
    if (schedule) setUpSchedule(schedule);
    startCountdowns();
  });
})();
