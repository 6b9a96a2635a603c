// A release's report: the counts by state, the progress and the charts, fetched again every
// two seconds while a send may still change. Without this script the page shows the counts
// as they were when it loaded.
(function () {
  "use strict";
  var report = document.getElementById("report");
  if (!report || !window.fetch) {
    return;
  }
  var url = report.getAttribute("data-live-url");
  var interval = parseInt(report.getAttribute("data-poll-ms"), 10) || 2000;
  var numbers = new Intl.NumberFormat("en-GB");
  var timer = null;

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showSend(send, chart) {
    var section = report.querySelector('[data-send="' + send.send_id + '"]');
    if (!section) {
      // A send made since the page loaded: the page itself has to be read again.
      return false;
    }
    var badge = section.querySelector('[data-field="state"]');
    if (badge) {
      setText(badge, send.state.replace(/_/g, " "));
      badge.className = "state state-" + send.state;
    }
    Object.keys(send.counts).forEach(function (state) {
      var n = send.counts[state];
      setText(section.querySelector('[data-count="' + state + '"]'), numbers.format(n));
      var tile = section.querySelector('[data-state="' + state + '"]');
      if (tile) {
        tile.classList.toggle("tile-zero", n === 0);
      }
    });
    var progress = section.querySelector('[data-field="progress"]');
    if (progress) {
      progress.max = Math.max(send.total, 1);
      progress.value = send.finished;
    }
    var text = section.querySelector('[data-field="progress-text"]');
    if (text) {
      var strong = text.querySelector("strong");
      setText(strong, numbers.format(send.finished));
      if (strong && strong.nextSibling) {
        strong.nextSibling.textContent = " of " + numbers.format(send.total) + " finished";
      }
    }
    var holder = section.querySelector('[data-chart="' + send.send_id + '"]');
    if (holder && chart) {
      holder.innerHTML = chart;
    }
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (live) {
        var charts = live.charts || {};
        live.sends.forEach(function (send) {
          showSend(send, charts[String(send.send_id)]);
        });
        report.setAttribute("data-updated", new Date().toISOString());
        timer = live.active ? window.setTimeout(poll, interval) : null;
      })
      .catch(function () {
        // Logged out, or the server is away: try again later, more slowly.
        timer = window.setTimeout(poll, interval * 5);
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden && timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    } else if (!document.hidden && timer === null) {
      poll();
    }
  });
  timer = window.setTimeout(poll, interval);
})();
