// Per-parameter time series for the strip charts: time (s), min, max, last of each
// decimation interval, in contiguous Float64Arrays so a chart gets zero-copy views.
// Appends go at the end; when the buffer is full the newest half moves to the front.
// decimate() reduces a window to one point per pixel column for drawing. Backfilled rows
// are merged in by time (rare); `breaks` are times after which the line must not be drawn
// on to the next point (a hole in the data that no backfill has filled yet).

export class Series {
  constructor(capacity = 4096) {
    this.cap = Math.max(64, capacity);
    this.t = new Float64Array(this.cap * 2);
    this.min = new Float64Array(this.cap * 2);
    this.max = new Float64Array(this.cap * 2);
    this.last = new Float64Array(this.cap * 2);
    this.start = 0;
    this.end = 0;
    this.version = 0; // bumped on every change, so charts redraw only when needed
    this.breaks = []; // sorted times (s): no line from the point at this time to the next one
  }

  get length() {
    return this.end - this.start;
  }

  push(t, min, max, last) {
    if (this.end > this.start && t <= this.t[this.end - 1]) {
      if (t < this.t[this.end - 1] - 5) this.clear(); // time went back (new flight, replay): start again
      else return; // a repeat of the same interval (snapshot after data)
    }
    if (this.end === this.t.length) this._compact();
    const i = this.end++;
    this.t[i] = t;
    this.min[i] = min;
    this.max[i] = max;
    this.last[i] = last;
    if (this.end - this.start > this.cap) this.start = this.end - this.cap;
    this.version++;
  }

  clear() {
    this.start = this.end = 0;
    this.breaks = [];
    this.version++;
  }

  /** A hole in the data after the newest point (a gap, a reconnect): drawn as a break. */
  markBreak() {
    const t = this.lastTime;
    this.breaks = this.breaks.filter((b) => b >= this.t[this.start]); // those still held
    if (t === t && !this.breaks.includes(t)) this.breaks.push(t);
    this.version++;
  }

  /**
   * After a backfill: drop the break at time b if the hole after it was filled, that is if the
   * next point comes within twice the spacing of the points before b (or `minStep` s).
   */
  settleBreak(b, minStep) {
    const i = this.indexAt(b);
    if (i + 1 >= this.end || this.t[i] !== b) return;
    const step = i > this.start ? Math.max(b - this.t[i - 1], minStep) : minStep;
    if (this.t[i + 1] - b > 2 * step) return;
    this.breaks = this.breaks.filter((x) => x !== b);
    this.version++;
  }

  /** Merge rows sorted by time (backfill) with the points held; points at the same time are kept once. */
  merge(t, min, max, last) {
    const n = t.length;
    if (!n) return;
    const old = this.end - this.start;
    const add = [t, min, max, last];
    const out = add.map(() => new Float64Array(old + n));
    const src = [this.t, this.min, this.max, this.last];
    let i = this.start;
    let j = 0;
    let k = 0;
    while (i < this.end || j < n) {
      const fromOld = j >= n || (i < this.end && this.t[i] <= t[j]);
      if (fromOld && j < n && this.t[i] === t[j]) j++; // the same point twice
      for (let a = 0; a < 4; a++) out[a][k] = fromOld ? src[a][i] : add[a][j];
      if (fromOld) i++;
      else j++;
      k++;
    }
    const keep = Math.min(k, this.cap);
    for (let a = 0; a < 4; a++) src[a].set(out[a].subarray(k - keep, k), 0);
    this.start = 0;
    this.end = keep;
    this.version++;
  }

  /** A copy with room for `capacity` points, holding the newest of these (and their breaks). */
  resized(capacity) {
    const s = new Series(capacity);
    const [t, mn, mx, last] = this.window(-Infinity);
    s.merge(t, mn, mx, last);
    s.breaks = this.breaks.slice();
    return s;
  }

  _compact() {
    const n = this.end - this.start;
    for (const a of [this.t, this.min, this.max, this.last]) a.copyWithin(0, this.start, this.end);
    this.start = 0;
    this.end = n;
  }

  /** Index of the first point at or after time t (binary search). */
  indexAt(t) {
    let lo = this.start;
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Views [t, min, max, last] of the points from time `from` on, to `to` (no copies). */
  window(from, to = Infinity) {
    const i = Math.max(this.start, this.indexAt(from) - 1);
    const j = to === Infinity ? this.end : Math.min(this.end, this.indexAt(to) + 1);
    return [this.t.subarray(i, j), this.min.subarray(i, j), this.max.subarray(i, j), this.last.subarray(i, j)];
  }

  get lastTime() {
    return this.end > this.start ? this.t[this.end - 1] : NaN;
  }
}

/**
 * Views [t, min, max, last] reduced to one point per column of `dt` seconds: the min of the
 * mins, the max of the maxes, the last value and its time. Columns are multiples of `dt`, so
 * they stay put as the window scrolls. Written into `out` (arrays reused from frame to frame,
 * grown when needed); returns views of it.
 */
export function decimate([t, mn, mx, last], dt, out) {
  const n = t.length;
  if (out.length !== 4 || out[0].length < n) {
    out.length = 0;
    for (let k = 0; k < 4; k++) out.push(new Float64Array(Math.max(n, 64)));
  }
  const [ot, omn, omx, olast] = out;
  let j = -1;
  let col = NaN;
  for (let i = 0; i < n; i++) {
    const c = Math.floor(t[i] / dt);
    if (c !== col) {
      col = c;
      j++;
      omn[j] = mn[i];
      omx[j] = mx[i];
    } else {
      if (mn[i] < omn[j]) omn[j] = mn[i];
      if (mx[i] > omx[j]) omx[j] = mx[i];
    }
    ot[j] = t[i];
    olast[j] = last[i];
  }
  return out.map((a) => a.subarray(0, j + 1));
}
