// The embeddable chat button. On any page: <script src="https://support.example.com/chat/widget.js" async></script>
// It opens our /chat page in a frame, so the visitor's token lives with our origin and the host page's
// styles and scripts never touch the conversation. Optional attributes: data-lang="ru|en", data-label="…".
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || document.getElementById("switchboard-chat-frame")) return;
  var origin = new URL(script.src).origin;
  var lang = script.getAttribute("data-lang");
  var label = script.getAttribute("data-label") || (lang === "ru" ? "Написать нам" : "Chat with us");
  // The frame's referrer would carry only the host's origin: the page the visitor is on goes in the address.
  var src = origin + "/chat?embed=1" + (lang ? "&lang=" + encodeURIComponent(lang) : "") +
    "&page=" + encodeURIComponent(location.href.slice(0, 500));

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "switchboard-chat-frame");
  button.style.cssText = "position:fixed;right:1rem;bottom:1rem;z-index:2147483646;padding:.7rem 1.1rem;" +
    "border:0;border-radius:2rem;background:#0b57d0;color:#fff;font:600 16px system-ui,sans-serif;cursor:pointer;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.25)";

  var frame = null;
  button.addEventListener("click", function () {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "switchboard-chat-frame";
      frame.src = src;
      frame.title = label;
      frame.style.cssText = "position:fixed;right:1rem;bottom:4.5rem;z-index:2147483647;width:min(380px,calc(100vw - 2rem));" +
        "height:min(560px,calc(100vh - 6rem));border:1px solid #d5d9de;border-radius:.75rem;background:#fff;" +
        "box-shadow:0 4px 18px rgba(0,0,0,.25)";
      document.body.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
    var open = !frame.hidden;
    button.setAttribute("aria-expanded", String(open));
    if (open) frame.focus();
  });
  (document.body || document.documentElement).appendChild(button);
})();
