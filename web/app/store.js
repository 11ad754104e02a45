// The console's state: catalog, latest values with limit states, chart series, alarms,
// link and source. Messages from the server go in through apply(); views read the state
// and the `dirty` flags on the next animation frame (never once per message).
import { Series } from "./series.js";

export const LIMIT_HOLD_MS = 1500; // a limit colour stays at least this long (a one-sample spike is seen)
export const MAX_WINDOW_S = 300;

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
    this.rate = 20;
    this.lastSeq = 0;
    this.gaps = 0;
    this.frames = 0;
    this.lastDataLocal = 0; // performance.now() when the newest data arrived
    this.lastIngestNs = 0;
    this.serverLagMs = 0; // from the server's arrival of the data to its tick
    this.notice = null; // {text, level, at}
    this.subscriptions = new Map(); // sub id -> {ids, rate}
    this.dirty = { catalog: true, values: true, alarms: true, status: true, series: true };
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
    return Math.ceil(MAX_WINDOW_S * Math.max(1, this.rate)) + 16;
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
      v = { value: NaN, min: NaN, max: NaN, count: 0, t: 0, limit: 0, held: 0, heldUntil: 0, version: 0 };
      this.values.set(name, v);
    }
    return v;
  }

  /** A new session starts (hello): sequence numbers restart at 1. */
  reset() {
    this.lastSeq = 0;
    this.subscriptions.clear();
  }

  apply(m) {
    if (typeof m.seq === "number") {
      if (this.lastSeq && m.seq !== this.lastSeq + 1) this.gaps += Math.max(0, m.seq - this.lastSeq - 1);
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

  _on_subscribed(m) {
    this.subscriptions.set(m.sub, { ids: m.ids, rate: m.rate });
  }

  _on_unsubscribed(m) {
    this.subscriptions.delete(m.sub);
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
    this.note(`server: ${m.message || m.code}`, "error");
  }

  note(text, level = "info") {
    this.notice = { text, level, at: performance.now() };
    this.dirty.status = true;
  }

  /** The age of the newest data in ms (network + server time included), or null. */
  dataAge(now = performance.now()) {
    if (!this.lastDataLocal) return null;
    return Math.max(0, now - this.lastDataLocal) + this.serverLagMs;
  }

  /** Series buffers sized for a new update rate (history at another rate is dropped). */
  setRate(rate) {
    if (rate === this.rate) return;
    this.rate = rate;
    for (const name of this.series.keys()) this.series.set(name, new Series(this.seriesCapacity()));
    this.dirty.series = true;
  }

  /** Keep series only for the charted parameters. */
  keepSeries(names) {
    const keep = new Set(names);
    for (const name of [...this.series.keys()]) if (!keep.has(name)) this.series.delete(name);
    for (const name of keep) this.seriesOf(name);
  }
}
