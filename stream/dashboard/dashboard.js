// liqstream dashboard: loads the API once, then follows /api/stream (SSE) and refreshes the
// views it touches; polls when a proxy refuses the stream. No dependencies.
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

function rows(records, first, extra) {
  return records.map((r) => el("tr", {},
    el("td", {}, first(r)), el("td", {}, usd(r.total_usd)),
    el("td", { className: "long" }, usd(r.long_usd)), el("td", { className: "short" }, usd(r.short_usd)),
    el("td", {}, r.count.toLocaleString()), el("td", {}, extra(r))));
}

function renderTables() {
  const all = [...totals.values()];
  const coins = all.filter((r) => r.window === LONGEST && r.exchange === null && r.coin !== null)
    .sort((a, b) => b.total_usd - a.total_usd).slice(0, 10);
  document.querySelector("#coins tbody").replaceChildren(...rows(coins, (r) => r.coin,
    (r) => (r.largest ? usd(r.largest.notional_usd) + " " + r.largest.side : "")));
  const venues = all.filter((r) => r.window === LONGEST && r.coin === null && r.exchange !== null)
    .sort((a, b) => b.total_usd - a.total_usd);
  document.querySelector("#exchanges tbody").replaceChildren(...rows(venues, (r) => r.exchange,
    (r) => usd((totals.get(`${r.exchange}:*:${SHORTER}`) || { total_usd: 0 }).total_usd)));
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
  const title = (v.wildcard ? "one subscription for every instrument; " : "")
    + "as of " + time(v.coverage_as_of) + (v.state === "connected" ? "" : " (not connected now)");
  return el("td", { className: "instruments" + (partial ? " partial" : v.state === "connected" ? "" : " dim"), title },
    v.instruments_subscribed + "/" + v.instruments_listed);
}
function rejectedRow(v) { // every refused topic, in a list that scrolls past a few
  const items = v.rejected.map((r) => el("li", {}, el("code", {}, r.topic), " " + r.reason));
  const row = el("tr", { className: "rejected" }, el("td", { colSpan: 4 },
    `${v.rejected.length} rejected by ${v.exchange}:`, el("ul", {}, ...items)));
  row.dataset.feed = v.feed;
  return row;
}
function renderCoverage(venues) {
  document.querySelector("#coverage tbody").replaceChildren(...venues.flatMap((v) => {
    const row = el("tr", {},
      el("td", {}, v.feed, v.lower_bound ? el("span", { className: "lb", title: v.note }, " lower bound") : ""),
      el("td", { className: v.state === "connected" ? "short" : v.state === "unknown" ? "dim" : "long" }, v.state),
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
  source.addEventListener("breach", (e) => { breaches.unshift(JSON.parse(e.data)); renderAlerts(); });
  source.addEventListener("status", () => soon("status", async () => renderCoverage((await getJSON("/api/coverage")).venues)));
  source.onerror = () => { // the browser reconnects by itself; reload what we missed
    live.textContent = "reconnecting…"; live.className = "";
    loadAll().catch(() => {});
    if (source.readyState === EventSource.CLOSED && !polling) { // refused for good: poll
      polling = setInterval(() => loadAll().catch(() => {}), 5000);
      live.textContent = "polling every 5 s";
    }
  };
}

let polling = null;

loadAll().catch((e) => { document.getElementById("live").textContent = String(e); }).finally(follow);
