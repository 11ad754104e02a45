// Resume with backfill (docs/protocol.md, "Backfill: resume after a reconnect"). After a
// reconnect the console's subscribe carries since_ns, the newest sample time it holds. After a
// `gap` (edge node) or a jump in `seq` (bundles conflated away for a slow console) it asks for a
// `backfill` of the subscription, and once more CATCH_UP_MS later from where that one ended
// (frames an edge's bus lost while it reconnected come with no gap of their own).
// The store merges the rows into the chart series; a series shows a break at the hole unless a
// backfill filled it (what happened while the server itself was down stays a hole). A server
// that does not record answers backfill_unavailable: the break stays, nothing is said.
// backfill_busy, and a request left unanswered (an edge may forward it to an ingest node not yet
// back on the bus), are asked again a little later.

const RETRY_MS = 3000;
const REPLY_TIMEOUT_MS = 5000;
const TRIES = 3;
const CATCH_UP_MS = 2000;

export class Resume {
  /**
   * @param {import("./store.js").Store} store
   * @param {(m: object) => number|null} send sends a client message, returns its request id
   */
  constructor(store, send) {
    this.store = store;
    this.send = send;
    this.since = 0; // ns: the next subscribe of this session resumes from here (0: nothing held)
    this.breaks = []; // series with a break marked for the next resuming subscribe
    this.requests = new Map(); // request id -> {sub, since, breaks: [[series, t]], tries, timer}
    this.session = 0;
    store.onChange((kind) => {
      if (kind !== "skipped") return;
      const busy = new Set([...this.requests.values()].map((r) => r.sub)); // one at a time for a slow console
      for (const sub of store.subscriptions.keys()) if (!busy.has(sub)) this._afterGap({ sub }, true);
    });
  }

  /** A new session (hello): the next subscribe resumes after the newest sample held. */
  sessionStarted(names) {
    this.session++;
    for (const id of [...this.requests.keys()]) this._forget(id);
    this.since = this.store.newestNs(names);
    this.breaks = this.since ? this._mark([...this.store.series.values()]) : [];
  }

  /** Fields to add to the session's first subscribe (since_ns), once. */
  subscribeFields() {
    return this.since ? { since_ns: BigInt(Math.floor(this.since)) } : {};
  }

  /** The subscribe with since_ns was sent as request `id` (null: not sent). */
  subscribeSent(id) {
    if (id === null || !this.since) return;
    this._track(id, { sub: null, since: this.since, breaks: this.breaks, tries: 0 });
    this.since = 0;
    this.breaks = [];
  }

  /** Every server message, after the store took it. */
  apply(m) {
    const req = m.id != null ? this.requests.get(m.id) : undefined;
    if (m.type === "gap") this._afterGap(m);
    if (!req) return;
    this._track(m.id, req); // an answer: wait again
    if (m.type === "subscribed" || m.type === "backfill") req.sub = m.sub;
    else if (m.type === "backfill_done") this._done(m.id, req, m);
    else if (m.type === "error" && m.code === "backfill_busy") this._retry(m.id, req, RETRY_MS);
    else if (m.type === "error") this._forget(m.id);
  }

  /** Telemetry went missing: break the lines, ask for it since the newest sample before the gap. */
  _afterGap(m, mark = false) {
    const series = this.store.seriesOfSub(m.sub);
    if (mark) for (const s of series) s.markBreak();
    const names = (this.store.subscriptions.get(m.sub)?.ids || []).map((id) => this.store.byId.get(id)?.name);
    const since = this.store.newestNs(names.filter(Boolean));
    if (since) this._request(m.sub, since, series.map((s) => [s, s.lastTime]), 0, true);
  }

  _request(sub, since, breaks, tries, catchUp = false) {
    if (!this.store.subscriptions.has(sub)) return; // unsubscribed meanwhile
    const id = this.send({ type: "backfill", sub, since_ns: BigInt(Math.floor(since)) });
    if (id !== null) this._track(id, { sub, since, breaks, tries, catchUp });
  }

  /** Keep request `id`, asking again if nothing answers it in REPLY_TIMEOUT_MS. */
  _track(id, req) {
    clearTimeout(req.timer);
    req.timer = setTimeout(() => this._retry(id, req, 0), REPLY_TIMEOUT_MS);
    this.requests.set(id, req);
  }

  _forget(id) {
    clearTimeout(this.requests.get(id)?.timer);
    this.requests.delete(id);
  }

  _retry(id, req, delay) {
    this._forget(id);
    const session = this.session;
    if (req.sub === null || req.tries >= TRIES) return;
    setTimeout(() => session === this.session && this._request(req.sub, req.since, req.breaks, req.tries + 1, req.catchUp), delay);
  }

  /** The backfill is in: the breaks whose hole it filled go (a server that was down recorded nothing). */
  _done(id, req, m) {
    this._forget(id);
    const session = this.session;
    if (req.catchUp && m.rows) setTimeout(() => session === this.session && this._request(req.sub, m.to_ns, [], TRIES), CATCH_UP_MS);
    for (const [s, t] of req.breaks) s.settleBreak(t, 1 / m.rate);
    this.store.dirty.series = true;
  }

  _mark(series) {
    for (const s of series) s.markBreak();
    return series.map((s) => [s, s.lastTime]);
  }
}
