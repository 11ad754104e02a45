// Chart history from the recording (docs/protocol.md, "Backfill"). When the page opens or
// reloads, and when the charted parameters, the window or the rate change, the charts ask the
// server for what it recorded over the window: a subscription of the charted parameters at a
// history rate (about HISTORY_POINTS buckets over the window, never more than the live rate,
// so a 1-hour window costs 3,600 rows a parameter, not 72,000), whose backfill since
// newest - window is merged into the series by time (min/max per bucket: every spike stays),
// then unsubscribed. One such request at a time per console, and the server queues its replies
// only while the console keeps up: a reload of 20 charts is one paced backfill, not twenty.
// A server that does not record answers backfill_unavailable: the charts fill as data comes.

const HISTORY_POINTS = 2400;
const RETRY_MS = 2000;
const TRIES = 5;
const REPLY_TIMEOUT_MS = 15000;

export class History {
  /**
   * @param {import("./store.js").Store} store
   * @param {(m: object) => number|null} send sends a client message, returns its request id
   */
  constructor(store, send) {
    this.store = store;
    this.send = send;
    this.want = null; // {names, window, rate, key}
    this.done = ""; // the key of the last history served (or given up)
    this.req = null; // {id, sub, key, tries, timer}
    this.stats = { requests: 0, rows: 0, done: 0, lastMs: null };
  }

  /** What the charts show; asks for the history when it changed (call after each layout change). */
  setView(names, windowS, rate) {
    const key = JSON.stringify([[...names].sort(), windowS, rate, this.session]);
    this.want = { names: [...names], window: windowS, rate, key };
    this.poke();
  }

  /** A new session (hello): what it holds may have a hole; ask again. */
  sessionStarted() {
    this.session = (this.session || 0) + 1;
    this._drop();
    this.done = "";
    if (this.want) this.setView(this.want.names, this.want.window, this.want.rate);
  }

  /** The rate of the history buckets for a window: ~HISTORY_POINTS over it, at most the live rate. */
  static rateFor(windowS, liveRate) {
    return Math.max(1, Math.min(liveRate, Math.floor(HISTORY_POINTS / windowS)));
  }

  /** Ask for the history if it is wanted, not asked yet, and the newest sample time is known. */
  poke() {
    const w = this.want;
    if (!w || !w.names.length || this.done === w.key || this.req?.key === w.key) return;
    const names = w.names.filter((n) => this.store.byName.has(n));
    const newest = this.store.newestNs(names);
    if (!names.length || !newest) return; // before the snapshot: the next message pokes again
    this._drop();
    const since = BigInt(Math.max(0, Math.floor(newest - w.window * 1e9)));
    const rate = History.rateFor(w.window, w.rate);
    const id = this.send({ type: "subscribe", names, rate, since_ns: since });
    if (id === null) return;
    this.stats.requests++;
    this.req = { id, sub: null, key: w.key, rate, started: performance.now(), tries: 0 };
    this._arm();
  }

  /** Every server message, after the store took it. */
  apply(m) {
    const r = this.req;
    if (!r || m.id == null || m.id !== r.id) {
      if (m.type === "snapshot" || m.type === "subscribed") this.poke();
      return;
    }
    this._arm();
    if (m.type === "subscribed") r.sub = m.sub;
    else if (m.type === "backfill") this.stats.rows += m.ids.length;
    else if (m.type === "backfill_done") this._finish(r);
    else if (m.type === "error") {
      if (m.code === "backfill_busy" && r.tries < TRIES) this._again(r);
      else this._finish(r);
    }
  }

  /** Is `sub` the history's own subscription (its live frames are not the charts' data)? */
  owns(sub) {
    return this.req !== null && this.req.sub === sub;
  }

  _arm() {
    clearTimeout(this.req.timer);
    const r = this.req;
    r.timer = setTimeout(() => this.req === r && this._again(r), REPLY_TIMEOUT_MS);
  }

  _again(r) {
    this._drop();
    if (r.tries >= TRIES) {
      this.done = r.key;
      return;
    }
    setTimeout(() => {
      if (this.want?.key !== r.key || this.req) return;
      this.poke();
      if (this.req) this.req.tries = r.tries + 1;
    }, RETRY_MS);
  }

  _finish(r) {
    this.stats.done++;
    this.stats.lastMs = Math.round(performance.now() - r.started);
    this.done = r.key;
    this._drop();
    this.store.dirty.series = true;
  }

  /** Unsubscribe the history's subscription (if it got one). */
  _drop() {
    const r = this.req;
    if (!r) return;
    clearTimeout(r.timer);
    this.req = null;
    if (r.sub !== null && this.store.claimUnsubscribe(r.sub)) this.send({ type: "unsubscribe", sub: r.sub });
  }
}
