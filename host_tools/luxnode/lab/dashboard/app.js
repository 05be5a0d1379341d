// The luxnode lab dashboard: one card per node, fed by MQTT over WebSocket.
// Nodes are discovered from the lab's recent history (recent.json) and their retained
// status/state/light messages; the page sends the same JSON commands as `luxnode set`.
"use strict";

const WINDOW_MS = 5 * 60 * 1000;   // the chart shows the last five minutes
const CHART_W = 300, CHART_H = 100;  // the SVG viewBox
const LEAVES = ["status", "state", "light", "error", "telemetry"];

const nodes = new Map();   // device id -> {card, light: [[t, v]], led: [[t, v]], dragging}
let client = null;
let prefix = "luxnode";

function el(card, selector) { return card.querySelector(selector); }

function field(card, name) { return el(card, `[data-field="${name}"]`); }

function nodeFor(id) {
  let node = nodes.get(id);
  if (node) return node;
  const card = document.getElementById("node-card").content.firstElementChild.cloneNode(true);
  card.dataset.node = id;
  el(card, ".id").textContent = id;
  node = {id, card, light: [], led: [], dragging: false};
  wireControls(node);
  nodes.set(id, node);
  // Keep the cards sorted so node-2 stays between node-1 and node-3.
  const ids = [...nodes.keys()].sort((a, b) => a.localeCompare(b, undefined, {numeric: true}));
  const next = nodes.get(ids[ids.indexOf(id) + 1]);
  document.getElementById("nodes").insertBefore(card, next ? next.card : null);
  document.getElementById("empty").hidden = true;
  return node;
}

function send(node, command) {
  if (!client || !client.connected) {
    showError(node, "not connected to the broker; command not sent");
    return;
  }
  client.publish(`${prefix}/${node.id}/set`, JSON.stringify(command), {qos: 1});
}

function wireControls(node) {
  const slider = el(node.card, '[data-control="pwm"]');
  const auto = el(node.card, '[data-control="auto"]');
  const target = el(node.card, '[data-control="target"]');
  slider.addEventListener("pointerdown", () => { node.dragging = true; });
  slider.addEventListener("pointerup", () => { node.dragging = false; });
  slider.addEventListener("input", () => { field(node.card, "pwm-value").textContent = slider.value; });
  slider.addEventListener("change", () => {
    node.dragging = false;
    auto.checked = false;
    send(node, {control: "PWM", value: Number(slider.value), unit: "%"});
  });
  auto.addEventListener("change", () => {
    if (auto.checked) send(node, {control: "AUTO", value: Number(target.value), unit: "%"});
    else send(node, {control: "PWM", value: Number(slider.value), unit: "%"});
  });
  target.addEventListener("change", () => {
    if (auto.checked) send(node, {control: "AUTO", value: Number(target.value), unit: "%"});
  });
}

function record(series, value) {
  const now = Date.now();
  series.push([now, value]);
  // Keep one sample older than the window so the line starts at the left edge.
  while (series.length > 2 && series[1][0] < now - WINDOW_MS) series.shift();
}

function showError(node, text, at = Date.now()) {
  const time = new Date(at).toLocaleTimeString();
  field(node.card, "error").textContent = `${time} ${text}`;
}

function parseJson(node, leaf, text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    showError(node, `unreadable ${leaf} payload: ${text.slice(0, 64)}`);
    return null;
  }
}

function onStatus(node, text) {
  const status = text.trim() || "unknown";
  const badge = field(node.card, "status");
  badge.textContent = status;
  badge.dataset.value = status;
  node.card.dataset.online = String(status === "online");
}

function onLight(node, text) {
  const msg = parseJson(node, "light", text);
  if (!msg || typeof msg.light !== "number") return;
  field(node.card, "light").textContent = msg.light.toFixed(1);
  record(node.light, msg.light);
  draw(node);
}

function onState(node, text) {
  const msg = parseJson(node, "state", text);
  if (!msg || typeof msg.value !== "number") return;
  field(node.card, "led").textContent = String(Math.round(msg.value * 10) / 10);
  field(node.card, "mode").textContent = msg.control === "AUTO" ? `AUTO → ${msg.target}%` : String(msg.control);
  node.card.dataset.ledValue = String(msg.value);
  record(node.led, msg.value);
  const slider = el(node.card, '[data-control="pwm"]');
  if (!node.dragging) {
    slider.value = String(Math.round(msg.value));
    field(node.card, "pwm-value").textContent = slider.value;
  }
  el(node.card, '[data-control="auto"]').checked = msg.control === "AUTO";
  if (msg.control === "AUTO" && typeof msg.target === "number") {
    el(node.card, '[data-control="target"]').value = String(msg.target);
  }
  draw(node);
}

function onError(node, text) {
  const msg = parseJson(node, "error", text);
  if (msg) showNodeError(node, msg);
}

function showNodeError(node, msg, at) {
  const payload = msg.payload ? ` (${String(msg.payload)})` : "";
  showError(node, `${msg.error}${payload}`, at);
}

function duration(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function onTelemetry(node, text) {
  const msg = parseJson(node, "telemetry", text);
  if (msg) showTelemetry(node, msg);
}

function showTelemetry(node, msg) {
  const parts = [];
  if (msg.version) parts.push(`firmware ${msg.version}`);
  if (typeof msg.uptime_s === "number") parts.push(`up ${duration(msg.uptime_s)}`);
  if (typeof msg.rssi === "number") parts.push(`RSSI ${msg.rssi} dBm`);
  if (typeof msg.free_heap === "number") parts.push(`heap ${Math.round(msg.free_heap / 1024)} KiB free`);
  if (typeof msg.reconnects === "number") parts.push(`${msg.reconnects} reconnects`);
  field(node.card, "telemetry").textContent = parts.join(" · ");
}

const HANDLERS = {status: onStatus, light: onLight, state: onState, error: onError, telemetry: onTelemetry};

function onMessage(topic, payload) {
  if (!topic.startsWith(prefix + "/")) return;
  const parts = topic.slice(prefix.length + 1).split("/");
  if (parts.length !== 2 || !HANDLERS[parts[1]]) return;
  // An empty retained message clears a topic; it must not create a card.
  if (payload.length === 0 && !nodes.has(parts[0])) return;
  HANDLERS[parts[1]](nodeFor(parts[0]), new TextDecoder().decode(payload));
}

// The chart spans the data it has, from half a minute up to WINDOW_MS, so a fresh
// page shows a readable line rather than a sliver at the right edge.
function span(node, now) {
  const first = Math.min(...[node.light[0], node.led[0]].filter(Boolean).map((s) => s[0]), now);
  return Math.min(WINDOW_MS, Math.max(30 * 1000, now - first));
}

function points(series, now, width, step, holdToNow) {
  const start = now - width;
  const xy = (t, v) => `${(((t - start) / width) * CHART_W).toFixed(1)},${(CHART_H - v).toFixed(1)}`;
  const out = [];
  for (let i = 0; i < series.length; i++) {
    const [t, v] = series[i];
    const tt = Math.max(t, start);
    if (step && i > 0) out.push(xy(tt, series[i - 1][1]));
    out.push(xy(tt, v));
  }
  // While the node is online its last value holds until now: draw it to the right edge.
  if (series.length && holdToNow) out.push(xy(now, series[series.length - 1][1]));
  return out.join(" ");
}

function draw(node, now = Date.now()) {
  const svg = el(node.card, "svg.chart");
  const width = span(node, now);
  const online = node.card.dataset.online !== "false";
  el(svg, '[data-series="light"]').setAttribute("points", points(node.light, now, width, false, online));
  el(svg, '[data-series="led"]').setAttribute("points", points(node.led, now, width, true, online));
  svg.dataset.samples = String(node.light.length);
  el(node.card, ".span-key").textContent =
    width < 90 * 1000 ? `last ${Math.round(width / 1000)} s` : `last ${Math.round(width / 60000)} min`;
}

// What happened before the page opened, kept by the lab (bounded): the charts'
// recent samples, the last telemetry and the last error of each node.
function loadRecent(recent) {
  const shift = Date.now() - recent.now;  // the lab's clock to the page's
  for (const [id, past] of Object.entries(recent.nodes || {})) {
    const node = nodeFor(id);
    node.light = past.light.map(([t, v]) => [t + shift, v]);
    node.led = past.led.map(([t, v]) => [t + shift, v]);
    if (node.light.length) field(node.card, "light").textContent = node.light[node.light.length - 1][1].toFixed(1);
    if (past.telemetry) showTelemetry(node, past.telemetry);
    if (past.error) showNodeError(node, past.error, past.error.at + shift);
    draw(node);
  }
}

async function fetchJson(name) {
  const response = await fetch(name, {cache: "no-store", credentials: "same-origin"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${name}: HTTP ${response.status}`);
  return body;
}

function setBroker(state, text) {
  const badge = document.getElementById("broker");
  badge.dataset.state = state;
  badge.textContent = text;
}

async function start() {
  const config = await fetchJson("config.json");
  prefix = config.prefix;
  loadRecent(await fetchJson("recent.json"));
  const url = `ws://${location.hostname}:${config.ws_port}${config.ws_path || "/mqtt"}`;
  client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId: `luxnode-dashboard-${Math.random().toString(16).slice(2, 10)}`,
    username: config.username,
    password: config.password,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 2000,
  });
  client.on("connect", () => {
    setBroker("connected", `broker ${url}`);
    client.subscribe(LEAVES.map((leaf) => `${prefix}/+/${leaf}`), {qos: 0});
  });
  client.on("close", () => setBroker("offline", `broker ${url} unreachable; retrying`));
  client.on("error", (err) => setBroker("offline", `broker: ${err.message}`));
  client.on("message", onMessage);
  // Scroll the charts even when nothing new arrives.
  setInterval(() => { const now = Date.now(); nodes.forEach((node) => draw(node, now)); }, 1000);
}

start().catch((err) => setBroker("offline", err.message));
