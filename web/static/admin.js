// usersync admin: small conveniences on top of pages that work without
// JavaScript. Everything here is progressive: the server renders the same
// information, and forms post the same fields, whether or not this runs.
// Data from the server is only ever inserted as text (textContent), never
// as HTML.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body && body.error ? body.error : "HTTP " + r.status); }
          return body;
        });
      });
  }

  // Show only the settings of the chosen option: data-show-for="name=value".
  function initShowFor() {
    var blocks = document.querySelectorAll("[data-show-for]");
    if (!blocks.length) { return; }
    function update() {
      blocks.forEach(function (b) {
        var parts = b.getAttribute("data-show-for").split("=");
        var chosen = document.querySelector('input[type="radio"][name="' + parts[0] + '"]:checked');
        b.hidden = !!chosen && chosen.value !== parts[1];
      });
    }
    document.addEventListener("change", function (ev) {
      if (ev.target.type === "radio") { update(); }
    });
    update();
  }

  // "Add a row" for the attribute and column maps.
  function initAddRow() {
    document.querySelectorAll("[data-add-row]").forEach(function (btn) {
      var body = document.getElementById(btn.getAttribute("data-add-row"));
      if (!body) { return; }
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var rows = body.querySelectorAll("tr");
        var last = rows[rows.length - 1];
        var row = last.cloneNode(true);
        var n = rows.length;
        row.querySelectorAll("input").forEach(function (input) {
          var id = input.id.replace(/-\d+$/, "-" + n);
          var label = row.querySelector('label[for="' + input.id + '"]');
          if (label) {
            label.setAttribute("for", id);
            label.textContent = label.textContent.replace(/row \d+$/, "row " + (n + 1));
          }
          input.id = id;
          input.value = "";
        });
        body.appendChild(row);
        row.querySelector("input").focus();
      });
    });
  }

  // Live counts of a run page: poll the run until it ends, then reload so
  // the ledger and the buttons match the final state.
  function initRunPoll() {
    var box = document.querySelector("[data-run-status-url]");
    if (!box) { return; }
    var url = box.getAttribute("data-run-status-url");
    var status = box.querySelector('[data-run-field="status"] .badge');
    var phase = box.querySelector('[data-run-field="phase"]');
    var error = box.querySelector('[data-run-field="error"]');
    var failures = 0;
    function tick() {
      getJSON(url).then(function (run) {
        failures = 0;
        Object.keys(run.counts || {}).forEach(function (k) {
          var dd = box.querySelector('[data-count="' + k + '"]');
          if (dd) { dd.textContent = String(run.counts[k]); }
        });
        if (phase) { phase.textContent = run.phase; }
        if (status) {
          status.textContent = run.status.replace(/_/g, " ");
          status.className = "badge " + ({ running: "run", awaiting_approval: "warn", succeeded: "ok", failed: "fail", blocked: "fail" }[run.status] || "muted");
        }
        if (error) { error.textContent = run.error || ""; error.hidden = !run.error; }
        if (run.final || run.status === "awaiting_approval") {
          window.location.reload();
          return;
        }
        setTimeout(tick, 1000);
      }).catch(function () {
        failures++;
        setTimeout(tick, Math.min(10000, 1000 * (failures + 1)));
      });
    }
    // The page without script reloads itself through <noscript>; with
    // script it polls instead.
    setTimeout(tick, 1000);
  }

  // Group picker: search without leaving the page (and without losing
  // what was typed into the form).
  function initGroupSearch() {
    var input = document.querySelector("[data-groups-url]");
    var form = document.getElementById("group-search");
    var list = document.getElementById("group-list");
    if (!input || !form || !list) { return; }
    var extra = document.getElementById("group-extra");
    var extraList = document.getElementById("group-extra-list");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var url = input.getAttribute("data-groups-url") + "?search=" + encodeURIComponent(input.value);
      list.setAttribute("aria-busy", "true");
      getJSON(url).then(function (page) {
        var checked = {};
        document.querySelectorAll('input[name="groups"]:checked').forEach(function (c) { checked[c.value] = true; });
        var shown = {};
        page.items.forEach(function (g) { shown[g.id] = true; });
        // Selected groups that leave the list stay selected, below it.
        list.querySelectorAll('input[name="groups"]:checked').forEach(function (c) {
          if (!shown[c.value] && extraList) {
            var li = el("li");
            var box = el("input", { type: "checkbox", id: "gx-" + c.value, name: "groups", value: c.value });
            box.checked = true;
            li.appendChild(box);
            li.appendChild(document.createTextNode(" "));
            li.appendChild(el("label", { "for": "gx-" + c.value }, c.parentNode.querySelector("label").textContent));
            extraList.appendChild(li);
            extra.hidden = false;
          }
        });
        if (extraList) {
          extraList.querySelectorAll("li").forEach(function (li) {
            var c = li.querySelector("input");
            if (c && shown[c.value]) { li.remove(); }
          });
          extra.hidden = !extraList.querySelector("li");
        }
        list.textContent = "";
        if (!page.items.length) { list.appendChild(el("li", { "class": "muted" }, "No group matches.")); }
        page.items.forEach(function (g) {
          var li = el("li");
          var box = el("input", { type: "checkbox", id: "g-" + g.id, name: "groups", value: g.id });
          box.checked = !!checked[g.id];
          var label = el("label", { "for": "g-" + g.id }, g.name + " ");
          // The server names the kind, as the page without script does.
          label.appendChild(el("span", { "class": "muted" }, g.label || g.type || ""));
          li.appendChild(box);
          li.appendChild(document.createTextNode(" "));
          li.appendChild(label);
          list.appendChild(li);
        });
      }).catch(function (err) {
        list.textContent = "";
        list.appendChild(el("li", { "class": "field-error" }, "Could not list the provider's groups: " + err.message));
      }).then(function () { list.removeAttribute("aria-busy"); });
    });
  }

  // Group-sync pattern: check it against the provider's group names as
  // it is typed.
  function initPatternCheck() {
    var input = document.querySelector("[data-pattern-url]");
    var out = document.getElementById("pattern-result");
    if (!input || !out) { return; }
    var timer = null;
    var seq = 0;
    function show(p) {
      out.textContent = "";
      if (p.error) { out.appendChild(el("p", { "class": "field-error" }, p.error)); return; }
      var line = p.matched + " of " + p.total + " groups match" +
        (p.truncated ? " (only the first " + p.total + " groups were checked)" : "") + ".";
      out.appendChild(el("p", {}, line));
      if (p.matches.length) {
        var ul = el("ul", { "class": "matches" });
        p.matches.forEach(function (m) { ul.appendChild(el("li", {}, m)); });
        out.appendChild(ul);
      }
    }
    function check() {
      var mine = ++seq;
      if (input.value === "") { out.textContent = ""; return; }
      getJSON(input.getAttribute("data-pattern-url") + "?pattern=" + encodeURIComponent(input.value))
        .then(function (p) { if (mine === seq) { show(p); } })
        .catch(function (err) { if (mine === seq) { show({ error: err.message }); } });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 400);
    });
  }

  function initErrorSummary() {
    var s = document.getElementById("error-summary");
    if (s) { s.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    initShowFor();
    initAddRow();
    initRunPoll();
    initGroupSearch();
    initPatternCheck();
    initErrorSummary();
  });
})();
