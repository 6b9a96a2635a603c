// The admin pages, live: every few seconds, ask /admin/live for the sends' progress and the
// alerts, and move the progress bars and the alert banner. The page itself is complete
// without this script; it only keeps it current. Text is set with textContent, never as HTML.
(function () {
  "use strict";

  var root = document.querySelector("[data-admin-live]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-admin-live");
  var period = 1000 * (Number(root.getAttribute("data-poll-seconds")) || 2);
  var reloadOnChange = root.hasAttribute("data-reload-on-change");
  var numbers = new Intl.NumberFormat("en-GB");
  var timer = null;

  function setText(element, value) {
    if (element && element.textContent !== value) {
      element.textContent = value;
    }
  }

  function sinceWords(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 120) {
      return s + " s";
    }
    var minutes = Math.floor(s / 60);
    if (minutes < 120) {
      return minutes + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  // The sends on the page and their states, as "id:state" words, to notice a change.
  function shownSends() {
    var cards = root.querySelectorAll("[data-send-id]");
    return Array.prototype.map.call(cards, function (card) {
      return card.getAttribute("data-send-id") + ":" + card.getAttribute("data-send-state");
    }).join(" ");
  }

  function updateSend(send) {
    var card = root.querySelector('[data-send-id="' + send.id + '"]');
    if (!card) {
      return;
    }
    var bar = card.querySelector("[data-send-progress]");
    if (bar) {
      bar.max = Math.max(send.total, 1);
      bar.value = send.done;
      bar.textContent = Math.round(send.percent) + " %";
      bar.setAttribute("aria-label", "Send " + send.id + ": " + send.done + " of " + send.total + " done");
    }
    setText(card.querySelector("[data-send-done]"), numbers.format(send.done));
    setText(card.querySelector("[data-send-total]"), numbers.format(send.total));
    setText(card.querySelector("[data-send-percent]"), String(Math.round(send.percent)));
    setText(card.querySelector("[data-send-sent]"), numbers.format(send.sent));
    setText(card.querySelector("[data-send-rate]"), send.per_second.toFixed(1));
    var counts = card.querySelector("[data-send-counts]");
    if (counts) {
      var items = Object.keys(send.counts).map(function (state) {
        var item = document.createElement("li");
        item.className = "count count-" + state;
        var n = document.createElement("span");
        n.className = "n";
        n.textContent = numbers.format(send.counts[state]);
        item.appendChild(n);
        item.appendChild(document.createTextNode(" " + state));
        return item;
      });
      var before = Array.prototype.map.call(counts.children, function (li) { return li.textContent; });
      var after = items.map(function (li) { return li.textContent; });
      if (before.join("|") !== after.join("|")) {
        counts.replaceChildren.apply(counts, items);
      }
    }
  }

  // The message's `commands` (between backticks, as the command line writes them) as code.
  function messageNodes(text) {
    var parts = text.split("`");
    if (parts.length % 2 === 0) {
      return [document.createTextNode(text)];
    }
    return parts.map(function (part, i) {
      if (i % 2 === 0) {
        return document.createTextNode(part);
      }
      var code = document.createElement("code");
      code.textContent = part;
      return code;
    });
  }

  function updateAlerts(alerts) {
    var banner = root.querySelector("[data-alerts]");
    var list = root.querySelector("[data-alert-list]");
    if (!banner || !list) {
      return;
    }
    var items = list.children;
    var sameAlerts = items.length === alerts.length && alerts.every(function (alert, i) {
      return items[i].getAttribute("data-alert-key") === alert.key;
    });
    if (sameAlerts) {
      // The same alerts, their words perhaps updated ("silent for 14 s"): changed in place.
      alerts.forEach(function (alert, i) {
        if (items[i].getAttribute("data-alert-text") !== alert.message) {
          items[i].setAttribute("data-alert-text", alert.message);
          var message = items[i].querySelector(".alert-message");
          message.replaceChildren.apply(message, messageNodes(alert.message));
        }
      });
    } else {
      list.replaceChildren.apply(list, alerts.map(function (alert) {
        var item = document.createElement("li");
        item.className = "alert alert-" + alert.severity;
        item.setAttribute("data-alert-key", alert.key);
        item.setAttribute("data-alert-text", alert.message);
        var code = document.createElement("span");
        code.className = "alert-code";
        code.textContent = alert.code.replace(/_/g, " ");
        var message = document.createElement("span");
        message.className = "alert-message";
        message.replaceChildren.apply(message, messageNodes(alert.message));
        item.appendChild(code);
        item.appendChild(document.createTextNode(" "));
        item.appendChild(message);
        return item;
      }));
    }
    banner.hidden = alerts.length === 0;
  }

  function apply(figures) {
    if (reloadOnChange) {
      var live = figures.sends.map(function (send) { return send.id + ":" + send.state; }).join(" ");
      if (live !== shownSends()) {
        // A send started, ended or changed state: its card and actions come from the server.
        window.location.reload();
        return;
      }
    }
    figures.sends.forEach(updateSend);
    updateAlerts(figures.alerts);
    if (figures.last_tick_seconds_ago !== null) {
      setText(root.querySelector("[data-last-tick]"), sinceWords(figures.last_tick_seconds_ago));
    }
    setText(root.querySelector("[data-workers-alive]"), String(figures.workers_alive));
  }

  var failures = 0;

  function poll() {
    fetch(url, { credentials: "same-origin", redirect: "manual", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 403) {
          // The login ended or the role changed: stop; a reload shows why.
          root.setAttribute("data-live-stopped", "");
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (figures) {
        if (figures === null) {
          return;
        }
        failures = 0;
        apply(figures);
        timer = window.setTimeout(poll, period);
      })
      .catch(function () {
        // The server is restarting or the network dropped: try again, less often.
        failures += 1;
        timer = window.setTimeout(poll, Math.min(period * Math.pow(2, failures), 30000));
      });
  }

  timer = window.setTimeout(poll, period);
  document.addEventListener("visibilitychange", function () {
    // No polling from a tab nobody looks at; catch up at once when it is shown again.
    if (document.hidden) {
      window.clearTimeout(timer);
    } else if (!root.hasAttribute("data-live-stopped")) {
      window.clearTimeout(timer);
      poll();
    }
  });
})();
