// liqstream dashboard: loads the API once, then follows /api/stream (SSE) and refreshes the
// views it touches; polls when a proxy refuses the stream. No dependencies (the chart is SVG).
"use strict";

// The cards show these windows where the worker has them (LIQSTREAM_WINDOWS), else its four
// longest; the tables and the feed use its longest window.
const PREFERRED = ["1h", "4h", "12h", "24h"];
let WINDOWS = PREFERRED;
let LONGEST = "24h";
let SHORTER = "1h"; // the exchange table's second figure
function useWindows(configured) {
  const shown = PREFERRED.filter((w) => configured.includes(w));
  WINDOWS = shown.length ? shown : configured.slice(-4);
  LONGEST = configured[configured.length - 1];
  SHORTER = configured.includes("1h") && LONGEST !== "1h" ? "1h" : configured[0];
  document.querySelectorAll("[data-longest]").forEach((node) => { node.textContent = LONGEST; });
  document.querySelectorAll("[data-shorter]").forEach((node) => { node.textContent = SHORTER; });
}
const totals = new Map(); // "exchange:coin:window" -> record
let breaches = [];

function usd(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return "$" + (value / 1e9).toFixed(2) + "B";
  if (abs >= 1e6) return "$" + (value / 1e6).toFixed(2) + "M";
  if (abs >= 1e3) return "$" + (value / 1e3).toFixed(1) + "K";
  return "$" + value.toFixed(0);
}
const price = (p) => (p >= 100 ? p.toFixed(1) : p >= 1 ? p.toFixed(3) : p.toPrecision(4));
const key = (r) => `${r.exchange || "*"}:${r.coin || "*"}:${r.window}`;
const time = (ms) => new Date(ms).toLocaleTimeString();
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attrs || {});
  for (const child of children) node.append(child);
  return node;
}
async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

function renderCards() {
  const cards = document.getElementById("cards");
  cards.replaceChildren(...WINDOWS.map((w) => {
    const r = totals.get(`*:*:${w}`) || { total_usd: 0, long_usd: 0, short_usd: 0, count: 0 };
    const longPct = r.total_usd ? (100 * r.long_usd) / r.total_usd : 0;
    return el("div", { className: "card", id: "card-" + w },
      el("div", { className: "w" }, w + " · " + r.count.toLocaleString() + " orders"),
      el("div", { className: "v", id: "total-" + w }, usd(r.total_usd)),
      el("div", { className: "bar" }, el("div", { style: `width:${longPct.toFixed(1)}%` })),
      el("div", { className: "split" },
        el("span", { className: "long" }, "longs " + usd(r.long_usd)),
        el("span", { className: "short" }, "shorts " + usd(r.short_usd))));
  }));
}

function rows(records, first, extra, part) { // part: "coin" or "exchange", what a click charts
  return records.map((r) => {
    const row = el("tr", { className: chart[part] === r[part] && sameScope(r) ? "selected" : "" },
      el("td", {}, first(r)), el("td", {}, usd(r.total_usd)),
      el("td", { className: "long" }, usd(r.long_usd)), el("td", { className: "short" }, usd(r.short_usd)),
      el("td", {}, r.count.toLocaleString()), el("td", {}, extra(r)));
    row.dataset[part] = r[part];
    return row;
  });
}

function renderTables() {
  const all = [...totals.values()];
  const coins = all.filter((r) => r.window === LONGEST && r.exchange === null && r.coin !== null)
    .sort((a, b) => b.total_usd - a.total_usd).slice(0, 10);
  document.querySelector("#coins tbody").replaceChildren(...rows(coins, (r) => r.coin,
    (r) => (r.largest ? usd(r.largest.notional_usd) + " " + r.largest.side : ""), "coin"));
  const venues = all.filter((r) => r.window === LONGEST && r.coin === null && r.exchange !== null)
    .sort((a, b) => b.total_usd - a.total_usd);
  document.querySelector("#exchanges tbody").replaceChildren(...rows(venues, (r) => r.exchange,
    (r) => usd((totals.get(`${r.exchange}:*:${SHORTER}`) || { total_usd: 0 }).total_usd), "exchange"));
}

// The largest orders of the longest window from the totals records held, as /api/largest
// ranks them: no request per update, however many dashboards are open.
function largestHeld() {
  return [...totals.values()]
    .filter((r) => r.window === LONGEST && r.exchange !== null && r.coin !== null && r.largest)
    .map((r) => r.largest)
    .sort((a, b) => b.notional_usd - a.notional_usd || a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, 15);
}

function renderFeed(largest) {
  document.getElementById("feed").replaceChildren(...largest.map((o) => el("li", {},
    el("span", { className: o.side }, usd(o.notional_usd) + " " + o.side), " ",
    o.symbol + " on " + o.exchange + " ", el("span", { className: "dim" }, "@ " + price(o.price) + " · " + time(o.ts)))));
}

function renderAlerts() {
  const list = document.getElementById("alerts");
  if (!breaches.length) return;
  list.replaceChildren(...breaches.slice(0, 30).map((b) => {
    const scope = b.event ? `${b.event.side} ${b.event.symbol} on ${b.event.exchange}`
      : [b.exchange, b.coin].filter(Boolean).join(" ") || "market";
    const value = b.metric === "count" ? b.value : b.metric === "long_share"
      ? (100 * b.value).toFixed(0) + "%" : usd(b.value || 0);
    return el("li", {}, el("span", { className: "tag " + b.state }, b.state), " ",
      el("b", {}, b.rule), " " + scope + " " + (b.window || "") + " " + value + " ",
      el("span", { className: "dim" }, time(b.ts)));
  }));
}

// "803/805": instruments subscribed of those the venue lists (from the collectors' coverage
// records); partial coverage is highlighted and the topics the venue refused listed beneath.
function instruments(v) {
  if (v.instruments_listed === null) return el("td", { className: "dim instruments", title: "no coverage reported yet" }, "–");
  const partial = v.instruments_subscribed < v.instruments_listed;
  const live = v.state === "connected" && !v.stale;
  const title = (v.wildcard ? "one subscription for every instrument; " : "")
    + "as of " + time(v.coverage_as_of) + (live ? "" : " (not connected now)");
  return el("td", { className: "instruments" + (partial ? " partial" : live ? "" : " dim"), title },
    v.instruments_subscribed + "/" + v.instruments_listed);
}
function rejectedRow(v) { // every refused topic, in a list that scrolls past a few
  const items = v.rejected.map((r) => el("li", {}, el("code", {}, r.topic), " " + r.reason));
  const row = el("tr", { className: "rejected" }, el("td", { colSpan: 4 },
    `${v.rejected.length} rejected by ${v.exchange}:`, el("ul", {}, ...items)));
  row.dataset.feed = v.feed;
  return row;
}
// A stale feed (no heartbeat for 3 beats: its collector is gone without a word) is dimmed and
// labelled "stale"; its last reported state stays visible beside the label.
function stateCell(v) {
  if (v.stale) {
    return el("td", { className: "dim stale", title: "no heartbeat since " + time(v.heartbeat_as_of) + "; last reported " + v.state },
      el("span", { className: "tag stale" }, "stale"), " " + v.state);
  }
  return el("td", { className: v.state === "connected" ? "short" : v.state === "unknown" ? "dim" : "long" }, v.state);
}
function renderCoverage(venues) {
  document.querySelector("#coverage tbody").replaceChildren(...venues.flatMap((v) => {
    const row = el("tr", { className: v.stale ? "stale" : "" },
      el("td", {}, v.feed, v.lower_bound ? el("span", { className: "lb", title: v.note }, " lower bound") : ""),
      stateCell(v),
      instruments(v),
      el("td", {}, String(v.gaps_24h.length)));
    row.dataset.feed = v.feed;
    return v.rejected.length ? [row, rejectedRow(v)] : [row];
  }));
}

async function loadAll() {
  const t = await getJSON("/api/totals");
  useWindows(t.windows);
  const [b, l, c] = await Promise.all([getJSON("/api/breaches"),
    getJSON(`/api/largest?window=${LONGEST}&limit=15`), getJSON("/api/coverage")]);
  totals.clear();
  for (const r of t.totals) totals.set(key(r), r);
  breaches = b.breaches;
  renderCards(); renderTables(); renderFeed(l.largest); renderAlerts(); renderCoverage(c.venues);
  document.getElementById("asof").textContent = "as of " + time(t.as_of);
}

const pending = new Set();
function soon(kind, fn) { // coalesce bursts of updates of one kind into one repaint
  if (pending.has(kind)) return; // (a status change never waits behind, nor is lost to, totals)
  pending.add(kind);
  setTimeout(() => { pending.delete(kind); fn(); }, 250);
}

function follow() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/stream");
  source.onopen = () => { live.textContent = "live"; live.className = "on"; };
  source.addEventListener("totals", (e) => {
    const r = JSON.parse(e.data);
    if (r.count) totals.set(key(r), r); else totals.delete(key(r));
    soon("totals", () => {
      renderCards(); renderTables(); renderFeed(largestHeld());
      document.getElementById("asof").textContent = "as of " + time(r.as_of);
    });
  });
  source.addEventListener("history", (e) => onHistory(JSON.parse(e.data)));
  source.addEventListener("breach", (e) => { breaches.unshift(JSON.parse(e.data)); renderAlerts(); });
  const refreshCoverage = () => soon("status", async () => renderCoverage((await getJSON("/api/coverage")).venues));
  source.addEventListener("status", refreshCoverage);
  // A feed turns stale by its collector going quiet, which sends nothing: ask again now and then.
  setInterval(refreshCoverage, 15e3);
  source.onerror = () => { // the browser reconnects by itself; reload what we missed
    live.textContent = "reconnecting…"; live.className = "";
    loadAll().catch(() => {});
    reloadChart();
    if (source.readyState === EventSource.CLOSED && !polling) { // refused for good: poll
      polling = setInterval(() => { loadAll().catch(() => {}); reloadChart(); }, 5000);
      live.textContent = "polling every 5 s";
    }
  };
}

// ---- Liquidations over time: stacked long/short USD bars per interval and an order-count
// line, for the market, a coin or an exchange (click a row), from /api/history. Drawn as SVG.
const RANGES = { "1h": [3600e3, "1m"], "6h": [6 * 3600e3, "5m"], "24h": [86400e3, "5m"],
  "2d": [2 * 86400e3, "15m"], "7d": [7 * 86400e3, "1h"], "30d": [30 * 86400e3, "4h"] };
const INTERVALS = [["1m", 60e3], ["5m", 300e3], ["15m", 900e3], ["1h", 3600e3], ["4h", 4 * 3600e3], ["1d", 86400e3]];
const chart = { exchange: null, coin: null, range: "24h", from: null, to: null, data: null, retry: undefined };
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}
const sameScope = (r) => (r.exchange || null) === chart.exchange && (r.coin || null) === chart.coin;
const following = () => chart.from === null; // a preset range ends now and slides with it

// The interval of a custom range: the finest giving at most 400 bars.
function intervalFor(spanMs) {
  const found = INTERVALS.find(([, ms]) => spanMs / ms <= 400);
  return (found || INTERVALS[INTERVALS.length - 1])[0];
}
function historyQuery(interval) {
  const to = following() ? Date.now() : chart.to;
  const from = following() ? to - RANGES[chart.range][0] : chart.from;
  const params = new URLSearchParams({ from: String(Math.floor(from)), to: String(Math.floor(to)), interval });
  if (chart.exchange) params.set("exchange", chart.exchange);
  if (chart.coin) params.set("coin", chart.coin);
  return "/api/history?" + params;
}
async function loadChart() {
  const interval = following() ? RANGES[chart.range][1] : intervalFor(chart.to - chart.from);
  let response = await fetch(historyQuery(interval));
  // Finer than 1h is kept for a shorter horizon than the retention: older ranges come hourly.
  if (response.status === 400 && !["1h", "4h", "1d"].includes(interval)) response = await fetch(historyQuery("1h"));
  const info = document.getElementById("chart-info");
  if (response.status === 503) { // the view is still reading history: ask again when it says
    const seconds = Number(response.headers.get("Retry-After")) || 2;
    info.textContent = "history is loading…";
    clearTimeout(chart.retry);
    chart.retry = setTimeout(reloadChart, seconds * 1000);
    return;
  }
  if (!response.ok) {
    info.textContent = ((await response.json().catch(() => ({}))).error) || "history: " + response.status;
    return;
  }
  chart.data = await response.json();
  drawChart();
}
const reloadChart = () => loadChart().catch((e) => { document.getElementById("chart-info").textContent = String(e); });

function niceMax(value) { // 1, 2 or 5 times a power of ten, at least `value`
  if (value <= 0) return 0.25;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= value);
}
function clock(ms, spanMs) {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (spanMs <= 86400e3) return hm;
  const day = d.toLocaleDateString([], { month: "short", day: "numeric" });
  return spanMs <= 3 * 86400e3 ? day + " " + hm : day;
}

function drawChart() {
  const data = chart.data;
  const box = document.getElementById("chart");
  const width = Math.max(box.clientWidth, 300), height = 240;
  const left = 58, right = 46, top = 8, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  const buckets = data.buckets;
  // four gridlines at round steps: the top is four times a 1, 2 or 5 step
  const maxUsd = 4 * niceMax(Math.max(0, ...buckets.map((b) => b.long_usd + b.short_usd)) / 4);
  const maxCount = 4 * Math.max(1, Math.ceil(niceMax(Math.max(0, ...buckets.map((b) => b.count / 4)))));
  const slot = plotW / Math.max(buckets.length, 1);
  const barW = Math.max(1, slot * 0.8);
  const y = (usdValue) => top + plotH - (usdValue / maxUsd) * plotH;
  const yCount = (n) => top + plotH - (n / maxCount) * plotH;
  const root = svg("svg", { id: "chart-svg", viewBox: `0 0 ${width} ${height}`, "data-interval": data.interval,
    "data-from": data.from, "data-to": data.to, "data-exchange": data.exchange || "", "data-coin": data.coin || "" });
  for (let i = 0; i <= 4; i++) { // grid and both axes' labels
    const yy = top + plotH - (i / 4) * plotH;
    root.append(svg("line", { class: "grid", x1: left, x2: left + plotW, y1: yy, y2: yy }),
      svg("text", { class: "axis", x: left - 6, y: yy + 4, "text-anchor": "end" }, usd((maxUsd * i) / 4)),
      svg("text", { class: "axis", x: left + plotW + 6, y: yy + 4 }, String(Math.round((maxCount * i) / 4))));
  }
  const span = data.to - data.from - data.interval_ms; // the range asked, not its rounding
  const every = Math.max(1, Math.ceil(buckets.length / 7));
  buckets.forEach((b, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    const end = b.start + data.interval_ms;
    const title = `${clock(b.start, span)}–${clock(end, span)}: longs ${usd(b.long_usd)} (${b.long_count}), `
      + `shorts ${usd(b.short_usd)} (${b.short_count}), ${b.count} orders`
      + (b.largest ? `; largest ${usd(b.largest.notional_usd)} ${b.largest.side} ${b.largest.symbol} on ${b.largest.exchange}` : "");
    const group = svg("g", { class: "bucket", "data-start": b.start, "data-long": b.long_usd,
      "data-short": b.short_usd, "data-count": b.count }, svg("title", {}, title),
      svg("rect", { x, width: barW, y: top, height: plotH, fill: "transparent" })); // hover target
    if (b.long_usd > 0) group.append(svg("rect", { class: "long-bar", x, width: barW, y: y(b.long_usd),
      height: top + plotH - y(b.long_usd), fill: "var(--long)" }));
    if (b.short_usd > 0) group.append(svg("rect", { class: "short-bar", x, width: barW,
      y: y(b.long_usd + b.short_usd), height: y(b.long_usd) - y(b.long_usd + b.short_usd), fill: "var(--short)" }));
    group.addEventListener("mouseenter", () => { document.getElementById("chart-info").textContent = title; });
    root.append(group);
    if (i % every === 0) {
      root.append(svg("text", { class: "axis", x: left + i * slot, y: height - 6 }, clock(b.start, span)));
    }
  });
  const points = buckets.map((b, i) => `${(left + (i + 0.5) * slot).toFixed(1)},${yCount(b.count).toFixed(1)}`);
  root.append(svg("polyline", { id: "chart-count", points: points.join(" "), fill: "none",
    stroke: "var(--warn)", "stroke-width": 1.5, "stroke-linejoin": "round" }));
  box.replaceChildren(root);
  const total = buckets.reduce((a, b) => [a[0] + b.long_usd, a[1] + b.short_usd, a[2] + b.count], [0, 0, 0]);
  const summary = `${data.interval} bars · longs ${usd(total[0])} · `
    + `shorts ${usd(total[1])} · ${total[2].toLocaleString()} orders`;
  document.getElementById("chart-info").textContent = summary;
  root.addEventListener("mouseleave", () => { document.getElementById("chart-info").textContent = summary; });
}

function showScope(exchange, coin) { // a row was clicked: its series, over the range shown
  chart.exchange = exchange; chart.coin = coin;
  document.getElementById("chart-scope").textContent = coin || exchange || "market";
  renderTables(); // moves the row highlight
  reloadChart();
}
function pickRange(range) {
  chart.range = range; chart.from = null; chart.to = null;
  document.querySelectorAll("#ranges button[data-range]").forEach((b) => b.classList.toggle("on", b.dataset.range === range));
  reloadChart();
}
function customRange() {
  const from = Date.parse(document.getElementById("range-from").value);
  const toText = document.getElementById("range-to").value;
  const to = toText ? Date.parse(toText) : Date.now();
  if (!(from < to)) { document.getElementById("chart-info").textContent = "pick a from before the to"; return; }
  chart.from = from; chart.to = to;
  document.querySelectorAll("#ranges button[data-range]").forEach((b) => b.classList.remove("on"));
  reloadChart();
}
// A history record (one closed or corrected bucket) of the scope shown: the bars are asked
// again (a burst of records, one request) when it falls in the range shown or the range ends now.
function onHistory(r) {
  if (!sameScope(r)) return;
  if (!following() && !(r.start + (r.resolution_ms || 0) > chart.from && r.start < chart.to)) return;
  soon("history", reloadChart);
}
function setupChart() {
  document.querySelector("#coins tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr"); if (row) showScope(null, row.dataset.coin);
  });
  document.querySelector("#exchanges tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr"); if (row) showScope(row.dataset.exchange, null);
  });
  document.getElementById("chart-market").addEventListener("click", () => showScope(null, null));
  document.querySelectorAll("#ranges button[data-range]").forEach((b) => b.addEventListener("click", () => pickRange(b.dataset.range)));
  document.getElementById("range-apply").addEventListener("click", customRange);
  window.addEventListener("resize", () => { if (chart.data) soon("resize", drawChart); });
  // a quiet scope still slides with the clock
  setInterval(() => { if (following()) reloadChart(); }, 60e3);
  pickRange(chart.range);
}

let polling = null;

setupChart();
loadAll().catch((e) => { document.getElementById("live").textContent = String(e); }).finally(follow);
