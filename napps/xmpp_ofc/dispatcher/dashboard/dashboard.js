// The xmpp_ofc web dashboard: plain JavaScript, no library, no build step.
// Every 2 s it reads the NApps' REST APIs and redraws; the unblock button calls
// the rate limiter's DELETE. The chart is drawn on a <canvas> by hand.
// Writes need the controller's API token: the operator pastes it once into the
// header form; it lives in this tab's sessionStorage and goes out only as an
// Authorization header to this same origin (never a cookie, so another site
// cannot make the browser send it).
"use strict";

const POLL_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;
const MONITORED_SHOWN = 50;
const BLOCKED_SHOWN = 100;
const EVENTS_SHOWN = 15;
// Typing in the search box refreshes after this pause (not at every key).
const SEARCH_DEBOUNCE_MS = 300;
// "/api" whatever host and prefix the controller is reached under.
const API = location.pathname.replace(/\/xmpp_ofc\/dispatcher\/v1\/dashboard\/.*$/, "");
const DISPATCHER = `${API}/xmpp_ofc/dispatcher/v1`;
const RATE_LIMITER = `${API}/xmpp_ofc/rate_limiter/v1`;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- the API token ------------------------------------------------------------------

const TOKEN_KEY = "xmpp_ofc.api_token";

function apiToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; }
}

function tokenState(text, bad = false) {
  const state = document.getElementById("token-state");
  state.textContent = text;
  state.classList.toggle("bad", bad);
}

function showTokenState() {
  if (apiToken()) tokenState("token set");
  else tokenState("no token: Unblock needs it", true);
}

function setupTokenForm() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    input.value = "";
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    showTokenState();
    refresh();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
  });
  showTokenState();
}

async function request(method, url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = {};
  const token = apiToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(url, { method, headers, signal: controller.signal, cache: "no-store" });
    const text = await response.text();
    let body = null;
    try { body = JSON.parse(text); } catch (_) { body = text; }
    if (!response.ok) {
      if (response.status === 401) {
        tokenState(token ? "token refused (rotated?): paste the current one" : "paste the API token", true);
      }
      const message = body && (body.response || body.description) ? (body.response || body.description) : `HTTP ${response.status}`;
      throw new HttpError(response.status, message);
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

// --- tiny DOM helpers -------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fillRows(tbodyId, rows, emptyText, columns) {
  const tbody = document.getElementById(tbodyId);
  tbody.replaceChildren(
    ...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colSpan: columns }, emptyText))])
  );
}

function notice(id, text) {
  const node = document.getElementById(id);
  node.hidden = !text;
  node.textContent = text || "";
}

const number = (value, digits = 0) =>
  value === null || value === undefined ? "–" : Number(value).toLocaleString("en", {
    maximumFractionDigits: digits,
  });
const client = (ip, port) => (port === null || port === undefined ? `${ip} (all ports)` : `${ip}:${port}`);
const sum = (counts) => Object.values(counts || {}).reduce((a, b) => a + b, 0);
const clock = (unix) => new Date(unix * 1000).toLocaleTimeString("en-GB");

// --- switches ---------------------------------------------------------------------

function renderSwitches(data) {
  const switches = Object.values(data.switches || {});
  document.getElementById("switch-count").textContent = `(${switches.length})`;
  const rows = switches.map((sw) => {
    const modules = Object.entries(sw.modules || {}).map(([name, module]) =>
      el("span", { class: `chip ${module.enabled ? "on" : "off"}`, title: (module.subscriptions || []).join(", ") },
        `${name}${module.enabled ? "" : " (off)"}`));
    return el("tr", { "data-dpid": sw.dpid },
      el("td", { class: "mono" }, sw.dpid),
      el("td", {}, el("span", { class: `state ${sw.connected ? "up" : "down"}` }, sw.connected ? "connected" : "down")),
      el("td", {}, ...modules),
      el("td", { class: "num msgs-in" }, number(sum(sw.messages && sw.messages.in))),
      el("td", { class: "num msgs-out" }, number(sum(sw.messages && sw.messages.out))));
  });
  fillRows("switches", rows, "no switch yet", 5);
}

// --- chart --------------------------------------------------------------------------

function drawChart(history) {
  const canvas = document.getElementById("messages-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 900;
  const height = canvas.clientHeight || 220;
  if (canvas.width !== width * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  // Normalised to "per 10 s" whatever the sampling interval is.
  const points = (history.points || []).map((p) => ({
    at: p.at,
    in: (p.in * 10) / (p.seconds || history.interval),
    out: (p.out * 10) / (p.seconds || history.interval),
  }));
  const pad = { left: 56, right: 12, top: 10, bottom: 24 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const top = niceCeiling(Math.max(1, ...points.map((p) => Math.max(p.in, p.out))));

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7280";
  ctx.strokeStyle = "#e5e7eb";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const y = pad.top + plotH - (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    ctx.fillText(number((top * i) / 4), pad.left - 6, y);
  }
  const latest = document.getElementById("chart-latest");
  if (points.length === 0) {
    ctx.textAlign = "center";
    ctx.fillText("waiting for the first interval…", pad.left + plotW / 2, pad.top + plotH / 2);
    latest.textContent = "";
    return;
  }
  const capacity = Math.max(history.size || points.length, 2);
  const x = (i) => pad.left + plotW - ((points.length - 1 - i) * plotW) / (capacity - 1);
  const y = (v) => pad.top + plotH - (v / top) * plotH;
  for (const [key, color] of [["in", "#2563eb"], ["out", "#ea580c"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p[key])) : ctx.moveTo(x(i), y(p[key]))));
    ctx.stroke();
    ctx.fillStyle = color;
    const last = points.length - 1;
    ctx.beginPath();
    ctx.arc(x(last), y(points[last][key]), 3, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.fillStyle = "#6b7280";
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  if (x(0) < width - pad.right - 120) ctx.fillText(clock(points[0].at), x(0), height - 6);
  ctx.textAlign = "right";
  ctx.fillText(clock(points[points.length - 1].at), width - pad.right, height - 6);
  const last = points[points.length - 1];
  latest.textContent = `last 10 s: ${number(last.in)} in, ${number(last.out)} out`;
}

function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

// --- rate limiter -------------------------------------------------------------------

function unblockUrl(block) {
  const parts = [block.dpid, block.ip].concat(block.port === null || block.port === undefined ? [] : [block.port]);
  return `${RATE_LIMITER}/blocked/${parts.map((p) => encodeURIComponent(String(p))).join("/")}`;
}

async function unblock(block, button) {
  button.disabled = true;
  button.textContent = "unblocking…";
  try {
    await request("DELETE", unblockUrl(block));
    lastAction = `unblocked ${client(block.ip, block.port)} on ${block.dpid}`;
  } catch (error) {
    lastAction = error.status === 401
      ? "unblock refused: paste the API token (xmpp-ofc-controller --print-token) above"
      : `unblock failed: ${error.message}`;
  }
  refresh();
}

// Reasons can be long ("1200 packets/min > 100, ..."): one line, the rest on hover.
const reasonCell = (text) => el("td", { class: "reason", title: text }, text);

// "(12)", or "(50,000, first 100 shown)" when the controller sent one page of many.
function countText(total, shown, what) {
  return total > shown ? `(${number(total)}, ${what} ${number(shown)} shown)` : `(${number(total)})`;
}

function renderBlocked(data) {
  const blocks = data.blocked || [];
  document.getElementById("blocked-count").textContent =
    countText(data.total ?? blocks.length, blocks.length, "first");
  const rows = blocks.map((block) => {
    const button = el("button", { class: "unblock", type: "button" }, "Unblock");
    button.addEventListener("click", () => unblock(block, button));
    return el("tr", { "data-dpid": block.dpid, "data-ip": block.ip, "data-port": block.port ?? "" },
      el("td", { class: "mono" }, block.dpid),
      el("td", { class: "mono" }, client(block.ip, block.port)),
      reasonCell(block.reason + (block.manual ? " (manual)" : "")),
      el("td", { class: "num" }, `${number(block.remaining, 0)} s`),
      el("td", { class: "actions" }, button));
  });
  fillRows("blocked", rows, "nobody is blocked", 5);
}

function renderMonitored(data) {
  // Already the fastest first, one page: the controller sorted and cut it.
  const shown = data.monitored || [];
  const total = data.total ?? shown.length;
  const search = monitoredSearch();
  document.getElementById("monitored-count").textContent = search
    ? `(${number(total)} matching, ${number(shown.length)} shown)`
    : countText(total, shown.length, "fastest");
  const empty = search ? `no client matches "${search}"` : "no client monitored";
  const rows = shown.map((c) => {
    const flags = [c.over_threshold ? "over threshold" : "", c.whitelisted ? "whitelisted" : "",
      c.meter_id !== null && c.meter_id !== undefined ? `meter ${c.meter_id}` : ""].filter(Boolean);
    return el("tr", { class: c.over_threshold ? "hot" : "" },
      el("td", { class: "mono" }, c.dpid),
      el("td", { class: "mono" }, client(c.ip, c.port)),
      el("td", { class: "num" }, number(c.packets_per_min, 1)),
      el("td", { class: "num" }, number(c.payload_bytes_per_min, 0)),
      el("td", {}, flags.join(", ")));
  });
  fillRows("monitored", rows, empty, 5);
}

function renderEvents(data) {
  const events = (data.events || []).slice(-EVENTS_SHOWN).reverse();
  const rows = events.map((e) =>
    el("tr", { class: `event ${e.kind}` },
      el("td", {}, clock(e.at)),
      el("td", {}, el("span", { class: `kind ${e.kind}` }, e.kind)),
      el("td", { class: "mono" }, e.dpid),
      el("td", { class: "mono" }, client(e.ip, e.port)),
      reasonCell(e.reason + (e.manual ? " (manual)" : ""))));
  fillRows("events", rows, "no event yet", 5);
}

// --- the search box -----------------------------------------------------------------

function monitoredSearch() {
  return document.getElementById("monitored-search").value.trim();
}

function monitoredUrl() {
  const query = new URLSearchParams({ sort: "-packets_per_min", limit: String(MONITORED_SHOWN) });
  const search = monitoredSearch();
  if (search) query.set("q", search);
  return `${RATE_LIMITER}/monitored?${query}`;
}

function setupSearch() {
  const form = document.getElementById("monitored-search-form");
  const input = document.getElementById("monitored-search");
  let pause = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(pause);
    refresh();
  });
  input.addEventListener("input", () => {
    clearTimeout(pause);
    pause = setTimeout(refresh, SEARCH_DEBOUNCE_MS);
  });
}

function rateLimiterMissing(error) {
  const text = error instanceof HttpError && error.status === 404
    ? "rate limiter not loaded"
    : `rate limiter unreachable: ${error.message}`;
  for (const id of ["blocked-notice", "monitored-notice", "events-notice"]) notice(id, text);
  for (const id of ["blocked", "monitored", "events"]) fillRows(id, [], "–", 5);
}

// --- the loop -----------------------------------------------------------------------

function setStatus(text, bad = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("bad", bad);
}

let timer = null;
let lastAction = "";

let generation = 0;
let firstRendered = false;

async function refresh() {
  clearTimeout(timer);
  // A search typed while a refresh is on its way starts another: only the newest draws.
  const mine = ++generation;
  const problems = [];
  const [switches, history, monitored, blocked, events] = await Promise.allSettled([
    request("GET", `${DISPATCHER}/switches`),
    request("GET", `${DISPATCHER}/messages/history`),
    request("GET", monitoredUrl()),
    request("GET", `${RATE_LIMITER}/blocked?limit=${BLOCKED_SHOWN}`),
    request("GET", `${RATE_LIMITER}/events?limit=${EVENTS_SHOWN}`),
  ]);
  if (mine !== generation) return;
  if (switches.status === "fulfilled") renderSwitches(switches.value);
  else problems.push(`switches: ${switches.reason.message}`);
  if (history.status === "fulfilled") drawChart(history.value);
  else problems.push(`history: ${history.reason.message}`);
  const limiter = [monitored, blocked, events];
  const failed = limiter.find((r) => r.status === "rejected");
  if (failed) {
    rateLimiterMissing(failed.reason);
  } else {
    for (const id of ["blocked-notice", "monitored-notice", "events-notice"]) notice(id, "");
    renderMonitored(monitored.value);
    renderBlocked(blocked.value);
    renderEvents(events.value);
  }
  document.body.dataset.updated = String(Date.now());
  if (!firstRendered) {
    // For the browser test and benchmark at 50k clients: when the page first had its data.
    firstRendered = true;
    performance.mark("xmpp_ofc:first-render");
  }
  const action = lastAction ? ` · ${lastAction}` : "";
  if (problems.length) setStatus(problems.join("; ") + action, true);
  else setStatus(`updated ${new Date().toLocaleTimeString("en-GB")}${action}`);
  timer = setTimeout(refresh, POLL_MS);
}

setupTokenForm();
setupSearch();
refresh();
