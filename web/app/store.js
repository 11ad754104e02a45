// The console's state: catalog, latest values with limit states, chart series, alarms,
// link, source, the data path of an edge node (bus) and targeted alerts. Messages from the
// server go in through apply(); views read the state and the `dirty` flags on the next
// animation frame (never once per message).
import { Series } from "./series.js";

export const LIMIT_HOLD_MS = 1500; // a limit colour stays at least this long (a one-sample spike is seen)
export const MAX_WINDOW_S = 3600;
const MAX_POINTS = 100_000; // a series' capacity at most (a 1-hour window at 20 Hz is 72,000)
export const MAX_ALERTS = 8; // targeted alerts kept, newest first
export const STALE_MIN_MS = 1000; // a parameter is stale after max(STALE_MIN_MS, STALE_PERIODS / its rate)
export const STALE_PERIODS = 3;

export class Store {
  constructor() {
    this.hello = null;
    this.catalog = { version: -1, groups: [], params: [] };
    this.byId = new Map(); // id -> catalog entry
    this.byName = new Map(); // name -> catalog entry
    this.values = new Map(); // name -> {value, min, max, count, t, limit, held, heldUntil}
    this.series = new Map(); // name -> Series
    this.alarms = new Map(); // alarm id -> alarm (wire form)
    this.link = { state: "WAITING", reason: "not connected" };
    this.source = { replay: false };
    this.bus = null; // the edge node's data path: {state: "LOST"|"OK", node}, null when not an edge
    this.alerts = []; // targeted alerts (wire form, plus `dismissed`), newest first
    this.rate = 20;
    this.windowS = 60;
    this.lastSeq = 0;
    this.gaps = 0;
    this.frames = 0;
    this.lastDataLocal = 0; // performance.now() when the newest data arrived
    this.lastMessageLocal = 0; // performance.now() when the newest message of any kind arrived
    this.live = false; // the connection is open (set by the console): values may be fresh
    this.lastIngestNs = 0;
    this.serverLagMs = 0; // from the server's arrival of the data to its tick
    this.notice = null; // {text, level, at}
    this.subscriptions = new Map(); // sub id -> {ids, rate}
    this.unsubscribing = new Set(); // sub ids an unsubscribe was sent for (its reply not yet in)
    this.dirty = { catalog: true, values: true, alarms: true, alerts: true, status: true, series: true };
    this.listeners = new Set();
  }

  onChange(fn) {
    this.listeners.add(fn);
  }

  _emit(kind, m) {
    for (const fn of this.listeners) fn(kind, m);
  }

  setCatalog(cat) {
    this.catalog = cat;
    this.byId = new Map(cat.params.map((p) => [p.id, p]));
    this.byName = new Map(cat.params.map((p) => [p.name, p]));
    this.dirty.catalog = this.dirty.values = true;
  }

  seriesCapacity() {
    return Math.min(MAX_POINTS, Math.ceil(Math.min(this.windowS, MAX_WINDOW_S) * Math.max(1, this.rate)) + 64);
  }

  seriesOf(name) {
    let s = this.series.get(name);
    if (!s) {
      s = new Series(this.seriesCapacity());
      this.series.set(name, s);
    }
    return s;
  }

  valueOf(name) {
    let v = this.values.get(name);
    if (!v) {
      v = { value: NaN, min: NaN, max: NaN, count: 0, t: 0, at: 0, limit: 0, held: 0, heldUntil: 0, version: 0 };
      this.values.set(name, v);
    }
    return v;
  }

  /** A new session starts (hello): sequence numbers restart at 1. */
  reset() {
    this.lastSeq = 0;
    this.subscriptions.clear();
    this.unsubscribing.clear();
  }

  apply(m) {
    this.lastMessageLocal = performance.now();
    if (typeof m.seq === "number") {
      if (this.lastSeq && m.seq > this.lastSeq + 1) {
        this.gaps += m.seq - this.lastSeq - 1;
        this._emit("skipped", m); // bundles conflated away (a slow console), before `m` is taken
      }
      this.lastSeq = m.seq;
    }
    const handler = this[`_on_${m.type}`];
    if (handler) handler.call(this, m);
    this._emit(m.type, m);
  }

  _on_hello(m) {
    this.hello = m;
    this.setCatalog(m.catalog);
    this.link = m.link || this.link;
    this.source = m.source || { replay: false };
    this.bus = null;
    this.alarms = new Map((m.alarms || []).map((a) => [a.id, a]));
    this.dirty.alarms = this.dirty.status = true;
  }

  _on_catalog(m) {
    this.setCatalog(m.catalog);
    this.alarms.clear(); // the server starts its alarms afresh with a new configuration
    this.dirty.alarms = true;
  }

  _on_source(m) {
    this.source = m.source || m;
    this.dirty.status = true;
  }

  _on_link(m) {
    this.link = m;
    this.dirty.status = true;
  }

  _on_bus(m) {
    this.bus = m;
    this.dirty.status = true;
  }

  /** Packets with a bad data checksum arrived (decoded, or refused with --strict-checksums). */
  _on_integrity(m) {
    this.note(m.message || "packets with a bad data checksum", "warn");
  }

  /** A UDP sender appeared, started over or was forgotten. */
  _on_udp_sender(m) {
    const c = m.counts || {};
    this.note(m.message || "UDP sender change", c.restart || c.evicted ? "warn" : "info");
  }

  /** Telemetry of a subscription went missing on the way (edge node): a break in its charts. */
  _on_gap(m) {
    for (const s of this.seriesOfSub(m.sub)) s.markBreak();
    this.note(`data gap: ${m.reason || "frames lost"}`, "warn");
    this.dirty.series = true;
  }

  /** Recorded rows of a subscription (backfill): merged into the charted series by time. */
  _on_backfill(m) {
    const rows = new Map(); // name -> row indexes
    for (let i = 0; i < m.ids.length; i++) {
      const p = this.byId.get(m.ids[i]);
      if (!p || !this.series.has(p.name)) continue;
      if (!rows.has(p.name)) rows.set(p.name, []);
      rows.get(p.name).push(i);
    }
    for (const [name, r] of rows) {
      const pick = (a, scale = 1) => Float64Array.from(r, (i) => a[i] / scale);
      this.series.get(name).merge(pick(m.last_t, 1e9), pick(m.min), pick(m.max), pick(m.last));
    }
    this.dirty.series = true;
  }

  _on_alert(m) {
    this.alerts = [m, ...this.alerts.filter((a) => a.alert !== m.alert)].slice(0, MAX_ALERTS);
    this.dirty.alerts = true;
  }

  dismissAlert(id) {
    for (const a of this.alerts) if (a.alert === id) a.dismissed = true;
    this.dirty.alerts = true;
  }

  /** The charted series of a subscription's parameters. */
  seriesOfSub(sub) {
    const ids = this.subscriptions.get(sub)?.ids || [];
    return ids.map((id) => this.series.get(this.byId.get(id)?.name)).filter(Boolean);
  }

  /**
   * The newest sample time (ns) held for any of `names`, or 0: from the charted series (data
   * and backfill, never a snapshot's newest value past a hole), else from the latest values.
   */
  newestNs(names) {
    let t = 0;
    for (const name of names) if (this.series.get(name)?.length) t = Math.max(t, this.series.get(name).lastTime * 1e9);
    if (!t) for (const name of names) t = Math.max(t, this.values.get(name)?.t || 0);
    return t;
  }

  _on_subscribed(m) {
    this.subscriptions.set(m.sub, { ids: m.ids, rate: m.rate });
  }

  _on_unsubscribed(m) {
    this.subscriptions.delete(m.sub);
    this.unsubscribing.delete(m.sub);
  }

  /** True the first time it is asked for ``sub``: the caller sends the one unsubscribe for it
   * (main.js and history.js may both want a subscription gone before its reply arrives). */
  claimUnsubscribe(sub) {
    if (!this.subscriptions.has(sub) || this.unsubscribing.has(sub)) return false;
    this.unsubscribing.add(sub);
    return true;
  }

  _on_snapshot(m) {
    const now = performance.now();
    for (let i = 0; i < m.ids.length; i++) {
      const p = this.byId.get(m.ids[i]);
      if (!p) continue;
      const v = this.valueOf(p.name);
      v.value = m.value[i];
      v.t = m.t[i];
      this._limit(v, m.limit[i], now);
      v.version++;
    }
    this.dirty.values = true;
  }

  _on_data(m) {
    if (m.rate !== this.rate) return; // another tier's frames: the history's, or the old rate's before it is left
    const now = performance.now();
    const n = m.ids.length;
    for (let i = 0; i < n; i++) {
      const p = this.byId.get(m.ids[i]);
      if (!p) continue;
      const v = this.valueOf(p.name);
      v.value = m.last[i];
      v.min = m.min[i];
      v.max = m.max[i];
      v.count = m.count[i];
      v.t = m.last_t[i];
      v.at = now;
      this._limit(v, m.limit[i], now);
      v.version++;
      const s = this.series.get(p.name);
      if (s) s.push(m.last_t[i] / 1e9, m.min[i], m.max[i], m.last[i]);
    }
    this.frames++;
    if (m.ingest_ns && m.ingest_ns !== this.lastIngestNs) {
      this.lastIngestNs = m.ingest_ns;
      this.lastDataLocal = now;
      this.serverLagMs = Math.max(0, (m.t - m.ingest_ns) / 1e6);
    }
    this.dirty.values = this.dirty.series = true;
  }

  _limit(v, limit, now) {
    v.limit = limit;
    if (Math.abs(limit) >= Math.abs(v.held) || now >= v.heldUntil) {
      v.held = limit;
      v.heldUntil = limit !== 0 ? now + LIMIT_HOLD_MS : 0;
    }
  }

  /** The limit state to colour a value with: the worst of the last LIMIT_HOLD_MS. */
  shownLimit(v, now = performance.now()) {
    return now < v.heldUntil ? v.held : v.limit;
  }

  _on_alarm(m) {
    const a = m.alarm;
    if (m.event === "cleared") this.alarms.delete(a.id);
    else this.alarms.set(a.id, a);
    this.dirty.alarms = true;
  }

  _on_error(m) {
    if (m.code === "backfill_unavailable" || m.code === "backfill_busy") return; // see resume.js
    this.note(`server: ${m.message || m.code}`, "error");
  }

  note(text, level = "info") {
    this.notice = { text, level, at: performance.now() };
    this.dirty.status = true;
  }

  /** How long (ms) a parameter may go without an update before it is stale: from its expected rate. */
  staleAfterMs(name) {
    const rate = Math.min(this.byName.get(name)?.rate || 1, this.rate);
    return Math.max(STALE_MIN_MS, (STALE_PERIODS * 1000) / rate);
  }

  /**
   * Null when the value of `name` is fresh; else how old it is (ms since it last arrived, or
   * Infinity if no update came on this connection): the connection is not open, the link is
   * lost, or the parameter has not updated within its stale timeout.
   */
  staleness(name, now = performance.now()) {
    const v = this.values.get(name);
    const age = v?.at ? now - v.at : Infinity;
    if (!this.live || this.link?.state === "LOST" || age > this.staleAfterMs(name)) return age;
    return null;
  }

  /** The age of the newest data in ms (network + server time included), or null. */
  dataAge(now = performance.now()) {
    if (!this.lastDataLocal) return null;
    return Math.max(0, now - this.lastDataLocal) + this.serverLagMs;
  }

  /** Series buffers sized for a new update rate and window (the points held are kept). */
  setView(rate, windowS) {
    if (rate === this.rate && windowS === this.windowS) return;
    this.rate = rate;
    this.windowS = windowS;
    for (const [name, old] of this.series) this.series.set(name, old.resized(this.seriesCapacity()));
    this.dirty.series = true;
  }

  /** Keep series only for the charted parameters. */
  keepSeries(names) {
    const keep = new Set(names);
    for (const name of [...this.series.keys()]) if (!keep.has(name)) this.series.delete(name);
    for (const name of keep) this.seriesOf(name);
  }
}
