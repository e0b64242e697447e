// Live alerts on the overview: subscribes to the server's alert stream with
// Server-Sent Events and lists each event as it arrives. The page reads fully without
// this script; it only adds what happened since the page was rendered.
"use strict";
(function () {
  var box = document.getElementById("live-alerts");
  var status = document.getElementById("live-status");
  if (!box || !window.EventSource) { return; }
  var source = new EventSource("/api/v1/alerts/stream");
  source.onopen = function () { status.textContent = "Live: new alert events appear here."; };
  source.onerror = function () { status.textContent = "Live updates paused; retrying."; };
  source.onmessage = function (message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    var alert = event.alert || {};
    var line = document.createElement("p");
    line.className = "live";
    line.setAttribute("data-event-id", String(event.id));
    // textContent, never innerHTML: alert text comes from certificates and servers.
    line.textContent = [event.type || event.event || "event",
                        alert.severity || "", "#" + (alert.id || event.alert_id || "?"),
                        alert.summary || event.summary || ""].join(" ");
    box.insertBefore(line, box.firstChild);
    while (box.childNodes.length > 50) { box.removeChild(box.lastChild); }
  };
})();
