// Scripts are on: what only a script-less page needs (the presence form's button) can hide.
document.documentElement.classList.add("js");

// A select that acts at once (presence): choosing is enough.
document.addEventListener("change", function (event) {
  "use strict";
  var form = event.target.form;
  if (form && form.hasAttribute("data-autosubmit")) form.requestSubmit();
});

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
    if (main.querySelector("input[name=ticket]:checked")) return true;  // a bulk change is being chosen
    return active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
      active.type !== "checkbox";
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
  var source = window.switchboardEvents = new EventSource("/desk/events");
  source.addEventListener("tickets", function () { if (!timer) timer = setTimeout(refresh, 250); });
  if (main.hasAttribute("data-live-calls")) {
    source.addEventListener("calls", function () { if (!timer) timer = setTimeout(refresh, 100); });
  }
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

// Bulk changes: "choose all" ticks every row; the bar says how many are chosen; x ticks the chosen row.
(function () {
  "use strict";
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("input[name=ticket]")); }
  function count() {
    var label = document.querySelector("[data-selected-count]");
    if (!label) return;
    var chosen = boxes().filter(function (box) { return box.checked; }).length;
    if (!label.dataset.hint) label.dataset.hint = label.textContent;
    label.textContent = chosen ? label.dataset.chosen + ": " + chosen : label.dataset.hint;
    label.parentNode.classList.toggle("active", chosen > 0);  // the bar's controls show once a ticket is chosen
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-pick-all]")) {
      boxes().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.name === "ticket" || (target.matches && target.matches("[data-pick-all]"))) count();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "x" || event.altKey || event.ctrlKey || event.metaKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) && event.target.type !== "checkbox") return;
    var row = document.querySelector("tr.selected");
    var box = row && row.querySelector("input[name=ticket]");
    if (box) { box.checked = !box.checked; count(); }
  });
})();

// A ticket page keeps itself current: when the ticket changes (a client's message, a colleague's reply) the history,
// the badges and the side panel are fetched again — the reply being written stays as it is. It also shows who
// else has the ticket open and who is typing, and tells the others while this agent types.
(function () {
  "use strict";
  var main = document.querySelector("main[data-ticket-page]");
  if (!main || !window.EventSource) return;
  var number = main.dataset.ticketPage;
  var others = main.querySelector("[data-others]");
  var typingLine = main.querySelector("[data-typing]");
  var pending = null;
  function swap(fresh, selector) {
    var now = main.querySelector(selector), next = fresh.querySelector(selector);
    if (now && next) now.replaceWith(next);
  }
  function refresh() {
    pending = null;
    fetch(location.pathname, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) return;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      swap(fresh, ".ticket-head");
      swap(fresh, "main > .grid > aside");
      var timeline = main.querySelector("[data-live-timeline]");
      var next = fresh.querySelector("[data-live-timeline]");
      var composer = timeline && timeline.querySelector("form.composer");
      if (!timeline || !next || !composer) return;
      while (timeline.firstChild && timeline.firstChild !== composer) timeline.removeChild(timeline.firstChild);
      Array.prototype.slice.call(next.childNodes).forEach(function (node) {
        if (!(node.matches && node.matches("form.composer"))) timeline.insertBefore(node, composer);
      });
      main.dispatchEvent(new CustomEvent("switchboard:refreshed", { bubbles: true }));
    }).catch(function () { /* the next change tries again */ });
  }
  var source = window.switchboardEvents = new EventSource("/desk/events?ticket=" + encodeURIComponent(number));
  document.documentElement.dataset.live = "connecting";
  source.addEventListener("open", function () { document.documentElement.dataset.live = "on"; });
  source.addEventListener("error", function () { document.documentElement.dataset.live = "retrying"; });
  source.addEventListener("ticket", function () { if (!pending) pending = setTimeout(refresh, 250); });
  var typingTimer = null;
  source.addEventListener("company", function (event) {
    var company = [];
    try { company = JSON.parse(event.data); } catch (e) { return; }
    var names = company.map(function (c) { return c.name; });
    var typists = company.filter(function (c) { return c.typing; }).map(function (c) { return c.name; });
    if (others) {
      others.hidden = !names.length;
      others.textContent = names.length ? others.dataset.words.replace("{names}", names.join(", ")) : "";
    }
    if (typingLine) {
      typingLine.hidden = !typists.length;
      typingLine.textContent = typists.length ? typingLine.dataset.words.replace("{names}", typists.join(", ")) : "";
      clearTimeout(typingTimer);
      if (typists.length) typingTimer = setTimeout(function () { typingLine.hidden = true; }, 7000);
    }
  });
  // Typing: say so at most every 3 s while keys are pressed in the reply box.
  var said = 0;
  document.addEventListener("input", function (event) {
    if (event.target.id !== "body" || Date.now() - said < 3000) return;
    said = Date.now();
    var csrf = event.target.form && event.target.form.querySelector("input[name=csrf]");
    if (!csrf) return;
    var body = new URLSearchParams({ csrf: csrf.value });
    fetch("/desk/tickets/" + number + "/typing", { method: "POST", body: body, credentials: "same-origin" })
      .catch(function () { /* only a courtesy to colleagues */ });
  });
})();

// The call pop: when a call rings for this agent (or they take it, or it ends) the caller's card shows in a panel
// on whatever console page is open; its buttons post without leaving the page unless they open a ticket.
(function () {
  "use strict";
  var panel = document.getElementById("call-pop");
  if (!panel || !window.fetch) return;
  function show(response) {
    if (response.status === 204) { panel.hidden = true; panel.replaceChildren(); return; }
    return response.text().then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".call-card");
      if (!fresh) return;
      panel.replaceChildren(fresh);
      panel.hidden = false;
    });
  }
  function load(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(show).catch(function () {});
  }
  panel.addEventListener("click", function (event) {
    if (event.target.closest("[data-pop-close]")) { panel.hidden = true; }
  });
  panel.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-pop-form]");
    if (!form) return;
    event.preventDefault();
    // getAttribute: the form's field named "action" hides the form.action property
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin" }).then(function (r) {
      if (r.redirected && r.url.indexOf("/desk/tickets/") >= 0) { location.href = r.url; return; }
      var card = panel.querySelector(".call-card");
      if (r.redirected && card) return load("/desk/calls/" + encodeURIComponent(card.dataset.call) + "/pop");
      return show(r);  // the pop as the action left it, or with the reason it was refused
    }).catch(function () {});
  });
  load("/desk/calls/current");
  var source = window.switchboardEvents ||
    (window.EventSource && (window.switchboardEvents = new EventSource("/desk/events?only=calls")));
  if (!source) return;
  source.addEventListener("call", function (event) {
    var data = JSON.parse(event.data);
    load("/desk/calls/" + encodeURIComponent(data.call) + "/pop");
  });
})();

// A planned contact came due: a notice on whatever page is open (the server tells this agent's streams only).
// Forms with a local date and time send the browser's offset from UTC with it.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-local-time]");
    if (form && form.elements.tz) form.elements.tz.value = String(new Date().getTimezoneOffset());
  }, true);
  var source = window.switchboardEvents;
  if (!source) return;
  source.addEventListener("notice", function (event) {
    var data = JSON.parse(event.data);
    var box = document.createElement("p");
    box.className = "notice reminder";
    box.setAttribute("role", "alert");
    var link = document.createElement("a");
    link.href = data.link;
    link.textContent = data.text;
    box.appendChild(link);
    var main = document.querySelector("main");
    if (main) main.insertBefore(box, main.firstChild);
  });
})();
