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

// Live queue: when the server says tickets changed, fetch this page again and swap the new content in —
// no reload, nothing typed lost (it waits while a field has focus), at most one refresh in flight.
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
  var source = new EventSource("/desk/events");
  source.addEventListener("tickets", function () { if (!timer) timer = setTimeout(refresh, 250); });
  document.documentElement.dataset.live = "connecting";
  source.addEventListener("open", function () { document.documentElement.dataset.live = "on"; });
  source.addEventListener("error", function () { document.documentElement.dataset.live = "retrying"; });
})();
