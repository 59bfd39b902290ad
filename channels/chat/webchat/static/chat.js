// The chat page's client: one WebSocket, a visitor token and unsent messages kept in localStorage.
// Every text is put on the page with textContent: nothing a visitor or agent writes is read as HTML.
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("chat-strings").textContent);
  var KEY = "switchboard.chat";
  var list = document.getElementById("messages");
  var log = document.getElementById("log");
  var statusLine = document.getElementById("status");
  var composer = document.getElementById("composer");
  var textarea = document.getElementById("chat-text");
  var profileForm = document.getElementById("profile");
  var profileStatus = document.getElementById("profile-status");
  var nameInput = document.getElementById("chat-name");
  var emailInput = document.getElementById("chat-email");
  var embedded = document.body.classList.contains("embed");

  var saved = load();
  saved.pending = saved.pending || [];
  nameInput.value = saved.name || "";
  emailInput.value = saved.email || "";

  var shown = {};          // message id -> its <li>
  var unseen = [];         // agents' replies shown but not yet confirmed to the server
  var ws = null;
  var ready = false;
  var attempt = 0;
  var resendTimer = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode: this tab only */ }
  }
  function newId() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function setStatus(key, detail) {
    statusLine.dataset.state = key;
    statusLine.textContent = detail ? T[key] + " — " + detail : T[key];
  }
  function socketUrl() {
    var url = new URL("/chat/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }
  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 40; }
  function place(li, order) {
    li.dataset.order = order;
    var before = null;
    for (var node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.order) <= order) break;
      before = node;
    }
    var follow = atBottom();
    list.insertBefore(li, before);
    if (follow || li.classList.contains("in")) log.scrollTop = log.scrollHeight;
  }
  function bubble(kind, who, text, at) {
    var li = document.createElement("li");
    li.className = kind;
    var author = document.createElement("span");
    author.className = "who";
    author.textContent = who;
    var body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    li.appendChild(author);
    li.appendChild(body);
    if (at) {
      var time = document.createElement("time");
      time.dateTime = at;
      time.textContent = new Date(at).toLocaleString([], { hour: "2-digit", minute: "2-digit", day: "numeric", month: "short" });
      li.appendChild(time);
    }
    return li;
  }
  function attach(li, files) {
    (files || []).forEach(function (f) {
      var line = document.createElement("p");
      line.className = "file";
      var link = document.createElement("a");
      link.href = f.url;
      link.textContent = "\u{1F4CE} " + f.name;
      link.setAttribute("download", "");
      line.appendChild(link);
      li.insertBefore(line, li.querySelector("time"));
    });
  }
  function render(m) {
    if (shown[m.id]) return;
    var li = bubble(m.direction === "in" ? "in" : "out", m.direction === "in" ? T.you : (m.author || T.support), m.text, m.at);
    attach(li, m.files);
    li.dataset.id = m.id;
    shown[m.id] = li;
    place(li, m.id);
    if (m.direction === "out") unseen.push(m.id);
  }
  function renderPending(p) {
    var li = bubble("in", T.you, p.text, null);
    li.dataset.pending = p.id;
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = T.pending;
    li.appendChild(state);
    place(li, Number.MAX_SAFE_INTEGER);
  }
  function pendingItem(id) { return list.querySelector('li[data-pending="' + id + '"]'); }
  function forget(id) {
    saved.pending = saved.pending.filter(function (p) { return p.id !== id; });
    save();
  }
  function notice(text) {
    var li = document.createElement("li");
    li.className = "notice";
    li.textContent = text;
    place(li, Number.MAX_SAFE_INTEGER - 1);
  }
  function flushSeen() {
    if (!ready || document.visibilityState !== "visible" || !unseen.length) return;
    if (send({ type: "seen", ids: unseen.slice(0, 200) })) unseen = unseen.slice(200);
  }
  function sendPending() {
    resendTimer = null;
    saved.pending.forEach(function (p) { send({ type: "message", id: p.id, text: p.text }); });
  }
  function resendLater(seconds) {
    if (!resendTimer) resendTimer = setTimeout(sendPending, Math.max(1, seconds || 5) * 1000);
  }

  function handle(event) {
    switch (event.type) {
      case "welcome":
        saved.token = event.token;
        save();
        textarea.maxLength = event.limits.max_chars;
        event.messages.forEach(render);
        ready = true;
        attempt = 0;
        setStatus("online");
        sendPending();
        flushSeen();
        break;
      case "history":
        event.messages.forEach(render);
        flushSeen();
        break;
      case "ack":
        forget(event.id);
        var item = pendingItem(event.id);
        if (item) item.remove();
        render(event.message);
        break;
      case "message":
        render(event.message);
        flushSeen();
        break;
      case "status":
        notice(event.text);
        break;
      case "resync":
        send({ type: "history" });
        break;
      case "profile":
        profileStatus.textContent = T.saved;
        break;
      case "error":
        if (event.code === "unavailable" || event.code === "rate_limited") {
          setStatus("online", event.detail);
          resendLater(event.retry_after);
        } else if (event.id && pendingItem(event.id)) {
          var failed = pendingItem(event.id);
          failed.classList.add("failed");
          failed.querySelector(".state").textContent = event.detail;
          failed.setAttribute("role", "alert");
          forget(event.id);
        } else if (event.errors) {
          profileStatus.textContent = event.detail;
        } else {
          setStatus("online", event.detail);
        }
        break;
    }
  }

  function connect() {
    setStatus("connecting");
    ws = new WebSocket(socketUrl());
    ws.onopen = function () {
      send({
        type: "hello", token: saved.token || null, name: saved.name || null, email: saved.email || null,
        language: document.documentElement.lang || navigator.language, page: embedded ? (new URLSearchParams(location.search).get("page") || document.referrer) : location.href,
      });
    };
    ws.onmessage = function (e) {
      try { handle(JSON.parse(e.data)); } catch (err) { console.error("chat: bad frame", err); }
    };
    ws.onclose = function () {
      ready = false;
      setStatus("offline");
      var delay = Math.min(30000, 500 * Math.pow(2, attempt++)) * (0.8 + Math.random() * 0.4);
      setTimeout(connect, delay);
    };
  }

  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = textarea.value.trim();
    if (!text) { textarea.focus(); return; }
    var p = { id: newId(), text: text };
    saved.pending.push(p);
    save();
    renderPending(p);
    textarea.value = "";
    if (ready) send({ type: "message", id: p.id, text: p.text });
  });
  textarea.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.requestSubmit(); }
  });
  profileForm.addEventListener("submit", function (e) {
    e.preventDefault();
    saved.name = nameInput.value.trim();
    saved.email = emailInput.value.trim();
    save();
    profileStatus.textContent = "";
    send({ type: "profile", name: saved.name || null, email: saved.email || null });
  });
  document.addEventListener("visibilitychange", flushSeen);

  saved.pending.forEach(renderPending);
  connect();
})();
