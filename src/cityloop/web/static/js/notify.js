// The badge and the toasts of every console page: one EventSource on the user's live inbox
// (GET /api/v1/me/notifications/stream, the session cookie authenticates it). The browser
// reconnects by itself and sends Last-Event-ID, so a dropped connection misses nothing.
(function () {
  "use strict";
  var badge = document.getElementById("notify-count");
  var toasts = document.getElementById("toasts");
  if (!badge || !window.EventSource) return;

  function show(count) {
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.dataset.unread = String(count);
    badge.hidden = count <= 0;
  }

  function toast(n) {
    if (!toasts) return;
    var item = document.createElement("a");
    item.className = "toast" + (n.urgency === "A" ? " urgent" : "");
    item.href = n.link;
    item.dataset.id = String(n.id);
    var title = document.createElement("b");
    title.textContent = n.title;
    var body = document.createElement("span");
    body.textContent = n.body;
    item.appendChild(title);
    item.appendChild(body);
    item.addEventListener("click", function () {
      // Mark it read on the way to the case; the page the link opens loads anyway.
      var token = document.querySelector('meta[name="csrf-token"]');
      fetch("/inbox/" + n.id + "/read", {
        method: "POST",
        headers: { "X-CSRF-Token": token ? token.content : "" },
        keepalive: true,
      });
    });
    toasts.appendChild(item);
    setTimeout(function () { item.classList.add("leaving"); }, 8000);
    setTimeout(function () { item.remove(); }, 8600);
  }

  var source = new EventSource("/api/v1/me/notifications/stream");
  source.addEventListener("unread", function (e) {
    show(JSON.parse(e.data).unread);
  });
  source.addEventListener("notification", function (e) {
    var n = JSON.parse(e.data);
    show(n.unread);
    toast(n);
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
