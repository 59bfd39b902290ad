// Canned responses: choosing one puts its text (already filled in for this ticket) into the reply box.
(function () {
  "use strict";
  var select = document.getElementById("canned");
  if (!select) return;
  select.addEventListener("change", function () {
    var box = document.getElementById(select.dataset.target);
    if (!box || !select.value) return;
    box.value = box.value ? box.value.replace(/\s*$/, "\n\n") + select.value : select.value;
    select.value = "";
    box.focus();
  });
})();

// Live queue: when the server says tickets changed (and each minute, for the countdowns), fetch this page again
// and swap the new content in — no reload, nothing typed lost (it waits while a field has focus), at most one
// refresh in flight.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) return;
  var timer = null;
  function busy() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  function refresh() {
    timer = null;
    if (busy()) { timer = setTimeout(refresh, 2000); return; }
    fetch(location.href, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) return;
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main[data-live]");
      if (fresh) {
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        main.dispatchEvent(new CustomEvent("switchboard:refreshed", { bubbles: true }));
      }
    }).catch(function () { /* the next change tries again */ });
  }
  // The countdowns are written by the server: read them again each minute even when nothing changed.
  setInterval(function () { if (!timer && !document.hidden) timer = setTimeout(refresh, 0); }, 60000);
  var source = new EventSource("/desk/events");
  source.addEventListener("tickets", function () { if (!timer) timer = setTimeout(refresh, 250); });
  document.documentElement.dataset.live = "connecting";
  source.addEventListener("open", function () { document.documentElement.dataset.live = "on"; });
  source.addEventListener("error", function () { document.documentElement.dataset.live = "retrying"; });
})();

// A button may ask before it acts (merging closes the ticket): data-confirm holds the question.
document.addEventListener("submit", function (event) {
  "use strict";
  var button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// Keyboard: "/" search, j/k move through the queue, Enter opens the chosen ticket, r writes a reply,
// Ctrl+Enter (or Cmd+Enter) sends it, q goes back to the queue. Keys typed into a field stay in the field.
(function () {
  "use strict";
  function typing(target) {
    return target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable);
  }
  var chosen = null;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-ticket]")); }
  function choose(row) {
    rows().forEach(function (other) { other.classList.remove("selected"); });
    row.classList.add("selected");
    chosen = row.dataset.ticket;
    var link = row.querySelector("a");
    if (link) link.focus();
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.findIndex(function (row) { return row.classList.contains("selected"); });
    choose(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "body") {
      var send = document.getElementById("send-reply");
      if (send) { event.preventDefault(); send.form.requestSubmit(send); }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    var search = document.querySelector("input[name=q]");
    var body = document.getElementById("body");
    if (event.key === "/" && search) { event.preventDefault(); search.focus(); search.select(); }
    else if (event.key === "j") move(1);
    else if (event.key === "k") move(-1);
    else if (event.key === "r" && body) { event.preventDefault(); body.focus(); }
    else if (event.key === "q" && location.pathname !== "/desk") location.href = "/desk";
  });
  // After a live refresh the rows are new elements: keep the chosen one chosen.
  document.addEventListener("switchboard:refreshed", function () {
    var row = chosen && document.querySelector('tr[data-ticket="' + chosen + '"]');
    if (row) choose(row);
  });
})();
