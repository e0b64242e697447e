// Live alerts on the overview: follows the server's alert stream with Server-Sent
// Events, from the last event the page already reflects (data-after), and lists each
// event as it arrives. The page reads fully without this script.
"use strict";
(function () {
  var box = document.getElementById("live-alerts");
  var status = document.getElementById("live-status");
  if (!box || !window.EventSource) { return; }
  var url = box.getAttribute("data-stream") + "?after=" +
            encodeURIComponent(box.getAttribute("data-after") || "0");
  // On a reconnect the browser sends Last-Event-ID, and the server resumes from there.
  var source = new EventSource(url);
  var words = { opened: "opened", acknowledged: "acknowledged", resolved: "resolved",
                delivery_failed: "delivery failed" };
  source.onopen = function () { status.textContent = "Live: new alert events appear below."; };
  source.onerror = function () { status.textContent = "Live updates paused; retrying."; };
  function show(message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    var alert = event.alert || {};
    var line = document.createElement("p");
    line.className = "live";
    line.setAttribute("data-event-id", String(event.id));
    line.setAttribute("data-alert-id", String(event.alert_id));
    // textContent, never innerHTML: alert text comes from certificates and servers.
    line.textContent = "Alert " + event.alert_id + " " + (words[event.event] || event.event) +
      (alert.severity ? " (" + alert.severity + ")" : "") +
      (alert.summary ? ": " + alert.summary : "");
    box.insertBefore(line, box.firstChild);
    while (box.childNodes.length > 50) { box.removeChild(box.lastChild); }
  }
  for (var name in words) { source.addEventListener(name, show); }
  source.onmessage = show;
})();
