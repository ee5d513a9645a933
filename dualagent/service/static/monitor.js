// The dualagent live monitor: plain JS, no build step. Everything shown comes from the
// service's JSON and is set as text (never as HTML).
"use strict";

const token = new URLSearchParams(location.search).get("token");

function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function getJSON(path) {
  const response = await fetch(withToken(path), { cache: "no-store" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function wsURL(path) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  return scheme + location.host + withToken(path);
}

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ the call being watched

const view = {
  id: null,
  socket: null,
  bubbles: new Map(),   // item_id -> {li, text}
  byIndex: new Map(),   // utterance index -> li
  turns: [],            // [{speaker, start_s, end_s}]
  marks: [],            // [{kind, at_s}]
  length_s: 0,
};

function resetView(id, title) {
  if (view.socket) { view.socket.onclose = null; view.socket.close(); }
  Object.assign(view, { id, socket: null, bubbles: new Map(), byIndex: new Map(), turns: [], marks: [], length_s: 0 });
  $("call-empty").hidden = true;
  $("call-view").hidden = false;
  $("call-title").textContent = title || id || "starting…";
  $("call-persona").textContent = "";
  setStatus("running", "running");
  $("transcript").replaceChildren();
  $("timeline").replaceChildren();
  $("outcome").hidden = true;
  $("player").hidden = true;
  $("player").replaceChildren();
  markSelected();
}

function setStatus(text, kind) {
  const badge = $("call-status");
  badge.textContent = text;
  badge.className = "badge " + kind;
}

function addItem(className) {
  const list = $("transcript");
  const li = el("li", className);
  list.appendChild(li);
  list.scrollTop = list.scrollHeight;
  return li;
}

function bubbleFor(speaker, itemId) {
  let entry = view.bubbles.get(itemId);
  if (!entry) {
    const li = addItem(speaker + " speaking");
    li.appendChild(el("div", "who-line", speaker === "cs" ? "agent" : "caller"));
    const text = el("div", "bubble", "");
    li.appendChild(text);
    entry = { li, text };
    view.bubbles.set(itemId, entry);
  }
  return entry;
}

function drawTimeline() {
  const box = $("timeline");
  box.replaceChildren();
  const length = Math.max(view.length_s, 1);
  for (const turn of view.turns) {
    const seg = el("div", "seg " + turn.speaker);
    seg.style.left = (100 * turn.start_s / length) + "%";
    seg.style.width = Math.max(0.4, 100 * (turn.end_s - turn.start_s) / length) + "%";
    seg.title = turn.speaker + " " + turn.start_s.toFixed(1) + "–" + turn.end_s.toFixed(1) + " s";
    box.appendChild(seg);
  }
  for (const mark of view.marks) {
    const m = el("div", "mark " + mark.kind);
    m.style.left = (100 * mark.at_s / length) + "%";
    box.appendChild(m);
  }
}

function showOutcome(event) {
  const status = event.status || "unknown";
  const verdict = event.outcome || status;
  const kind = event.outcome || (status === "completed" ? "unknown" : status);
  setStatus(verdict, kind);
  const box = $("outcome");
  box.replaceChildren();
  box.className = "outcome " + kind;
  box.appendChild(el("b", null, "outcome: " + verdict));
  const figures = [
    "status " + status + (event.end_reason ? " (" + event.end_reason + ")" : ""),
    (event.turns ?? 0) + " turns",
    event.duration_s != null ? event.duration_s + " s of call" : null,
    (event.tool_calls ?? 0) + " tool calls",
    event.stopped_by ? "stopped: " + event.stopped_by : null,
  ].filter(Boolean);
  box.appendChild(el("div", "muted", figures.join(" · ")));
  box.hidden = false;
  const audio = event.urls && event.urls.audio && event.urls.audio.stereo;
  if (audio) {
    const player = $("player");
    const element = el("audio");
    element.id = "recording";
    element.controls = true;
    element.preload = "metadata";
    element.src = withToken(audio);
    player.replaceChildren(el("div", "muted", "recording (caller left, agent right)"), element);
    player.hidden = false;
  }
}

function onEvent(event) {
  switch (event.type) {
    case "call.started": {
      view.id = event.conversation_id;
      $("call-title").textContent = event.conversation_id;
      const persona = event.persona || {};
      $("call-persona").textContent = [
        event.caller_type + (persona.description ? " — " + persona.description : ""),
        event.scenario ? "scenario " + event.scenario : null,
        event.route + " route",
      ].filter(Boolean).join(" · ");
      markSelected();
      break;
    }
    case "utterance.started":
      bubbleFor(event.speaker, event.item_id);
      break;
    case "transcript.delta": {
      const entry = bubbleFor(event.speaker, event.item_id);
      entry.text.textContent += event.delta;
      break;
    }
    case "utterance.ended": {
      let entry = null;
      for (const [itemId, candidate] of view.bubbles) {
        if (candidate.li.classList.contains(event.speaker) && candidate.li.classList.contains("speaking")) {
          entry = candidate;
          view.bubbles.delete(itemId);
          view.bubbles.set("done-" + event.index, candidate);
          break;
        }
      }
      if (!entry) entry = bubbleFor(event.speaker, "done-" + event.index);
      entry.text.textContent = event.text;
      entry.li.classList.remove("speaking");
      if (event.interrupted) entry.li.classList.add("interrupted");
      view.byIndex.set(event.index, entry.li);
      view.turns.push({ speaker: event.speaker, start_s: event.start_s || 0, end_s: event.end_s || 0 });
      view.length_s = Math.max(view.length_s, event.end_s || 0);
      drawTimeline();
      break;
    }
    case "transcript.heard": {
      const li = view.byIndex.get(event.index);
      if (li && event.heard) {
        let heard = li.querySelector(".heard");
        if (!heard) { heard = el("div", "heard"); li.appendChild(heard); }
        heard.textContent = "heard: " + event.heard;
      }
      break;
    }
    case "tool.call": {
      const li = addItem("tool");
      const args = event.arguments && typeof event.arguments === "object"
        ? Object.entries(event.arguments).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ")
        : String(event.arguments ?? "");
      li.appendChild(el("code", null, "tool " + event.name + "(" + args + ")" + (event.ok === false ? " ✗" : " ✓")));
      if (event.at_s != null) { view.marks.push({ kind: "tool", at_s: event.at_s }); drawTimeline(); }
      break;
    }
    case "barge_in":
      addItem("note barge").textContent = event.speaker + " cuts in" + (event.at_s != null ? " at " + event.at_s.toFixed(1) + " s" : "");
      if (event.at_s != null) { view.marks.push({ kind: "barge", at_s: event.at_s }); drawTimeline(); }
      break;
    case "log":
      if (event.level === "error") addItem("note").textContent = "error: " + event.text;
      break;
    case "error":
      addItem("note").textContent = "error: " + (event.message || event.error);
      setStatus("error", "error");
      break;
    case "call.ended":
      for (const entry of view.bubbles.values()) entry.li.classList.remove("speaking");
      showOutcome(event);
      refreshLists();
      refreshHealth();
      break;
  }
}

function follow(path, title) {
  resetView(null, title);
  const socket = new WebSocket(wsURL(path));
  view.socket = socket;
  socket.onmessage = (message) => onEvent(JSON.parse(message.data));
  socket.onclose = (close) => {
    if (close.code !== 1000 && close.reason) {
      let reason = close.reason;
      try { reason = JSON.parse(close.reason).message || reason; } catch (e) { /* plain text */ }
      $("start-error").textContent = reason;
      $("start-error").hidden = false;
    }
  };
}

function startCall(form) {
  $("start-error").hidden = true;
  const params = new URLSearchParams();
  for (const name of ["caller_type", "scenario", "route", "duration", "seed"]) {
    const value = form.elements[name].value;
    if (value !== "") params.set(name, value);
  }
  if ($("detach").checked) params.set("detach", "1");
  follow("/agent-conversation?" + params.toString(), "starting…");
}

async function watchFinished(id) {
  resetView(id, id);
  try {
    const call = await getJSON("/conversations/" + encodeURIComponent(id));
    const md = call.metadata || {};
    $("call-persona").textContent = [md.caller_type, md.route ? md.route + " route" : null].filter(Boolean).join(" · ");
    call.transcript.forEach((turn, index) => {
      onEvent({ type: "utterance.ended", ...turn, index: turn.index ?? index });
      if (turn.heard) onEvent({ type: "transcript.heard", index: turn.index ?? index, heard: turn.heard });
    });
    for (const fc of call.function_calls) onEvent({ type: "tool.call", ...fc, at_s: fc.t_s });
    const s = call.summary;
    onEvent({ type: "call.ended", ...s, urls: call.urls });
  } catch (error) {
    $("call-persona").textContent = String(error);
  }
}

// ------------------------------------------------------------------ lists and health

function markSelected() {
  for (const li of document.querySelectorAll("ul.calls li")) {
    li.classList.toggle("selected", li.dataset.id === view.id);
  }
}

function fillList(listId, items, render) {
  const list = $(listId);
  list.replaceChildren();
  if (!items.length) { list.appendChild(el("li", "empty", "none")); return; }
  for (const item of items) {
    const li = el("li");
    li.dataset.id = item.conversation_id;
    render(li, item);
    list.appendChild(li);
  }
  markSelected();
}

async function refreshLists() {
  try {
    const active = await getJSON("/calls");
    $("active-count").textContent = active.active + " / " + active.max;
    fillList("active-calls", active.calls, (li, call) => {
      const left = el("div");
      left.appendChild(el("div", "who", call.caller_type + (call.scenario ? " · " + call.scenario : "")));
      left.appendChild(el("div", "meta", call.elapsed_s.toFixed(0) + " s · " + call.turns + " utterances · " +
        (call.speaker ? (call.speaker === "cs" ? "agent" : "caller") + " speaking" : "—")));
      li.appendChild(left);
      li.appendChild(el("span", "badge running", call.route));
      li.onclick = () => { if (view.id !== call.conversation_id) follow("/conversations/" + encodeURIComponent(call.conversation_id) + "/live", call.conversation_id); };
    });
    const done = await getJSON("/conversations?limit=30");
    const finished = done.conversations.filter((c) => !c.live && c.status !== "running");
    fillList("finished-calls", finished, (li, call) => {
      const left = el("div");
      left.appendChild(el("div", "who", call.caller_type || call.conversation_id));
      left.appendChild(el("div", "meta", (call.started_at || "").replace("T", " ").slice(0, 19) + " · " + (call.turns ?? 0) + " turns"));
      li.appendChild(left);
      const verdict = call.outcome || call.status;
      li.appendChild(el("span", "badge " + verdict, verdict));
      li.onclick = () => watchFinished(call.conversation_id);
    });
  } catch (error) {
    $("health").textContent = String(error);
  }
}

async function refreshHealth() {
  try {
    const health = await getJSON("/health");
    $("health").textContent = "v" + health.version + " · " + health.status + " · " +
      health.active_conversations + "/" + health.max_conversations + " calls · up " +
      Math.round(health.uptime_s) + " s";
  } catch (error) {
    $("health").textContent = String(error);
  }
}

async function loadOptions() {
  const options = await getJSON("/call-options");
  for (const name of options.caller_types) $("caller-type").appendChild(el("option", null, name)).value = name;
  for (const name of options.scenarios) $("scenario").appendChild(el("option", null, name)).value = name;
}

$("start-form").addEventListener("submit", (event) => { event.preventDefault(); startCall(event.target); });
loadOptions().catch((error) => { $("start-error").textContent = String(error); $("start-error").hidden = false; });
refreshHealth();
refreshLists();
setInterval(refreshHealth, 2000);
setInterval(refreshLists, 1500);
