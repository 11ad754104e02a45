// Strip charts with uPlot: one chart per parameter, the last value as a line and, when an
// update interval held several samples, the interval's min/max as an envelope band (so a
// spike that decimation folded into one point still shows). Charts are redrawn on animation
// frames, only when their series changed, and not at all while paused. A hole in the data (a
// gap or a reconnect that no backfill filled) breaks the line and the envelope.
import uPlot from "../vendor/uPlot.esm.js";
import { el, fmtParam, fmtStale, fmtTimeNs, limitClass, setText, utcAxisLabels } from "./format.js";
import { decimate } from "./series.js";

const COLORS = ["#4fc3f7", "#81c784", "#ffb74d", "#ba68c8", "#f06292", "#4db6ac", "#fff176", "#90a4ae",
  "#e57373", "#aed581", "#7986cb", "#ffd54f", "#4dd0e1", "#ff8a65", "#9575cd", "#dce775"];
const AXIS = { stroke: "#8a96a8", grid: { stroke: "#263040", width: 1 }, ticks: { stroke: "#263040", width: 1 } };
const HEIGHT = 150;
const NO_GAPS = [];
const SYNC_KEY = "gs-charts"; // every chart's cursor moves together

/** A parameter's colour, from its name (the same on every chart, whatever else is charted). */
export function colorOf(name) {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return COLORS[(h >>> 0) % COLORS.length];
}

function limitLines(entry) {
  const [cl, wl, wh, ch] = entry?.limits || [];
  const out = [];
  for (const v of [wl, wh]) if (v != null) out.push([v, "rgba(255,183,77,0.45)"]);
  for (const v of [cl, ch]) if (v != null) out.push([v, "rgba(239,83,80,0.6)"]);
  return out;
}

/**
 * The min/max envelope under the line: one polygon (max forward, min back), aggregated per
 * pixel column, filled and outlined thin so that a spike one interval wide stays visible.
 * (Cheaper than uPlot's bands, which clip with the series paths.)
 */
function drawEnvelope(u, color, gaps) {
  const [t, mx, mn] = u.data;
  const n = t.length;
  if (n < 2) return;
  const { ctx, bbox } = u;
  const cols = [];
  let px = NaN;
  let hi = -Infinity;
  let lo = Infinity;
  for (let i = 0; i < n; i++) {
    const x = Math.round(u.valToPos(t[i], "x", true));
    if (x !== px) {
      if (px === px) cols.push(px, hi, lo);
      px = x;
      hi = mx[i];
      lo = mn[i];
    } else {
      if (mx[i] > hi) hi = mx[i];
      if (mn[i] < lo) lo = mn[i];
    }
  }
  cols.push(px, hi, lo);
  ctx.save();
  ctx.beginPath();
  let from = bbox.left;
  for (const [x0, x1] of gaps) { // the envelope breaks where the line does
    ctx.rect(from, bbox.top, Math.max(0, x0 - from), bbox.height);
    from = x1;
  }
  ctx.rect(from, bbox.top, Math.max(0, bbox.left + bbox.width - from), bbox.height);
  ctx.clip();
  ctx.beginPath();
  for (let j = 0; j < cols.length; j += 3) ctx.lineTo(cols[j], u.valToPos(cols[j + 1], "y", true));
  for (let j = cols.length - 3; j >= 0; j -= 3) ctx.lineTo(cols[j], u.valToPos(cols[j + 2], "y", true));
  ctx.closePath();
  ctx.fillStyle = color + "40";
  ctx.fill();
  ctx.lineWidth = 1;
  ctx.strokeStyle = color + "80";
  ctx.stroke();
  ctx.restore();
}

/**
 * The pixel ranges [x0, x1] (canvas pixels) to leave blank for the series' breaks: from the
 * point at or before each break time to the first point after it (none: nothing to break).
 */
function breakGaps(u, breaks) {
  const t = u.data[0];
  const out = [];
  for (const b of breaks) {
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] <= b) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0 || lo === t.length) continue;
    out.push([Math.round(u.valToPos(t[lo - 1], "x", true)) + 1, Math.round(u.valToPos(t[lo], "x", true)) - 1]);
  }
  return out;
}

/** Warning (amber) and critical (red) limits as horizontal lines. */
function drawLimitLines(u, lines) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.lineWidth = 1;
  for (const [v, stroke] of lines) {
    const y = Math.round(u.valToPos(v, "y", true)) + 0.5;
    if (y < bbox.top || y > bbox.top + bbox.height) continue;
    ctx.strokeStyle = stroke;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
  }
  ctx.restore();
}

/** Y tick labels with as many decimals as their spacing needs (0.8015, 0.8020: never "0.802" twice). */
function yLabels(splits, incr, entry) {
  if (entry?.kind === "enum") return splits.map((v) => (Number.isInteger(v) ? entry.enum?.[String(v)] ?? String(v) : ""));
  const dp = Math.min(8, Math.max(0, -Math.floor(Math.log10(incr) + 1e-9)));
  return splits.map((v) => v.toFixed(dp));
}

/** The y axis as wide as its longest label (a label is never cut off). */
function yAxisSize(u, values) {
  const chars = Math.max(3, ...(values || []).map((v) => String(v).length));
  return Math.ceil(chars * 7.2) + 16;
}

class StripChart {
  constructor(name, store, color, onRemove, owner) {
    this.owner = owner;
    this.name = name;
    this.store = store;
    this.version = -1;
    this.xMin = 0;
    this.xMax = 1;
    this.valueEl = el("span", { class: "chart-value" }, "—");
    this.unitsEl = el("span", { class: "chart-units" });
    this.staleEl = el("span", { class: "chart-stale" });
    this.readoutEl = el("span", { class: "chart-readout" });
    this.stale = "";
    this.root = el("div", { class: "chart", dataset: { param: name } },
      el("div", { class: "chart-head" },
        el("span", { class: "chart-name", text: name, style: `color: ${color}` }), this.readoutEl, this.staleEl,
        this.valueEl, this.unitsEl,
        el("button", { class: "chart-remove", title: `remove ${name} from the charts`, onclick: () => onRemove(name) }, "×")),
      (this.plotEl = el("div", { class: "chart-plot" })));
    this.lines = [];
    this.visible = true; // set by the IntersectionObserver of Charts
    this.band = true;
    this.decimated = []; // reused arrays of decimate()
    this.breaks = []; // the series' break times (rarely any)
    const self = this;
    this.u = new uPlot({
      width: 300,
      height: HEIGHT,
      pxRatio: 1,
      legend: { show: false },
      // the cursor is shared (sync) and read out in every chart's header; a drag zooms every chart
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false },
        sync: { key: SYNC_KEY, setSeries: false } },
      scales: {
        x: { time: true, range: () => [self.xMin, self.xMax] },
        y: {
          range: (u, min, max) => {
            if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
            const pad = Math.max((max - min) * 0.08, Math.abs(max) * 1e-4, 1e-6);
            return [min - pad, max + pad];
          },
        },
      },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // ticks fall on UTC seconds, minutes, days
      axes: [
        { ...AXIS, size: 28, space: 110, values: (u, splits, ax, space, incr) => utcAxisLabels(splits, incr) },
        { ...AXIS, size: yAxisSize, space: 24, values: (u, splits, ax, space, incr) => yLabels(splits, incr, self.entry) },
      ],
      series: [
        {},
        // min and max take part in the y range, but are drawn by drawEnvelope (below)
        { label: "max", paths: () => null, points: { show: false } },
        { label: "min", paths: () => null, points: { show: false } },
        { label: name, stroke: color, width: 1, points: { show: false },
          gaps: (u, si, i0, i1, nullGaps) => (self.breaks.length ? breakGaps(u, self.breaks) : nullGaps) },
      ],
      hooks: {
        setCursor: [(u) => self._readout(u)],
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          owner.zoom(u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        }],
        ready: [(u) => {
          u.over.addEventListener("wheel", (e) => { e.preventDefault(); owner.pan(Math.sign(e.deltaY || e.deltaX) * 0.1); },
            { passive: false });
          u.over.addEventListener("dblclick", () => owner.live());
        }],
        drawAxes: [(u) => self.band && drawEnvelope(u, color, self.breaks.length ? breakGaps(u, self.breaks) : NO_GAPS)],
        draw: [(u) => drawLimitLines(u, self.lines)],
      },
    }, [[], [], [], []], this.plotEl);
  }

  /** The value and time under the (shared) cursor, in the header. */
  _readout(u) {
    const i = u.cursor.idx;
    const text = i == null || u.data[0][i] == null ? "" : `${fmtTimeNs(u.data[0][i] * 1e9, 2)}  ${fmtParam(this.entry, u.data[3][i])}`;
    setText(this.readoutEl, text);
  }

  setEntry(entry) {
    this.entry = entry;
    this.unitsEl.textContent = entry?.units || "";
    this.lines = limitLines(entry);
  }

  resize(width) {
    if (width > 50 && Math.abs(width - this.u.width) > 1) this.u.setSize({ width, height: HEIGHT });
  }

  renderHead(now) {
    const v = this.store.values.get(this.name);
    if (!v) return;
    setText(this.valueEl, fmtParam(this.entry, v.value));
    const cls = `chart-value ${limitClass(this.store.shownLimit(v, now))}`;
    if (this.valueEl.className !== cls) this.valueEl.className = cls;
    const age = this.store.staleness(this.name, now);
    const stale = age === null ? "" : fmtStale(age);
    if (stale !== this.stale) {
      this.stale = stale;
      setText(this.staleEl, stale);
      this.root.classList.toggle("stale", !!stale);
    }
  }

  /** Draw the window (`view`: a fixed [from, to] in s when zoomed or panned, else the newest `windowS`). */
  render(windowS, paused, force, view) {
    this.paused = paused;
    const s = this.store.series.get(this.name);
    if (!s || (paused && !force) || !this.visible || (!force && s.version === this.version)) return false;
    this.version = s.version;
    this.breaks = s.breaks;
    const latest = s.lastTime;
    if (!Number.isFinite(latest)) {
      this.u.setData([[], [], [], []]);
      return true;
    }
    [this.xMin, this.xMax] = view || [latest - windowS, latest];
    let data = s.window(this.xMin, this.xMax);
    // more points than pixel columns: one point per column, the envelope keeps the extremes
    const cols = this.u.bbox.width;
    const span = this.xMax - this.xMin;
    if (cols > 0 && data[0].length > cols) data = decimate(data, span / cols, this.decimated);
    const [t, mn, mx, last] = data;
    // The envelope is drawn only where it can be seen: when some interval's min..max spans
    // more than about a pixel of the chart.
    let lo = Infinity;
    let hi = -Infinity;
    let spread = 0;
    for (let i = 0; i < t.length; i++) {
      if (mn[i] < lo) lo = mn[i];
      if (mx[i] > hi) hi = mx[i];
      if (mx[i] - mn[i] > spread) spread = mx[i] - mn[i];
    }
    const band = hi > lo && (spread / (hi - lo)) * this.u.bbox.height > 1.5;
    this.band = band;
    this.u.setData([t, mx, mn, last]);
    return true;
  }

  destroy() {
    this.u.destroy();
    this.root.remove();
  }
}

export class Charts {
  constructor(container, store, { onRemove }) {
    this.container = container;
    this.store = store;
    this.onRemove = onRemove;
    this.charts = new Map();
    this.windowS = 60;
    this.paused = false;
    this.view = null; // [from, to] s while zoomed or panned; null: live (the newest windowS)
    this.onView = null; // called when the view changes (the toolbar's "back to live")
    this.force = false;
    this.width = 0;
    this.empty = el("p", { class: "empty" }, "No charts: add parameters with the chart button in the parameter list.");
    container.append(this.empty);
    new ResizeObserver(() => this._measure()).observe(container);
    // charts scrolled out of view are not drawn; they catch up when they come back
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const c = this.charts.get(e.target.dataset.param);
        if (!c) continue;
        c.visible = e.isIntersecting;
        if (c.visible) {
          c.version = -1;
          this.store.dirty.series = true;
          this.onVisible?.();
        }
      }
    });
  }

  _measure() {
    const first = this.container.querySelector(".chart-plot");
    const w = first ? first.clientWidth : 0;
    this.width = w;
    for (const c of this.charts.values()) c.resize(w);
  }

  setParams(names) {
    for (const [name, c] of this.charts) {
      if (!names.includes(name)) {
        this.io.unobserve(c.root);
        c.destroy();
        this.charts.delete(name);
      }
    }
    names.forEach((name) => {
      if (!this.charts.has(name)) {
        const c = new StripChart(name, this.store, colorOf(name), this.onRemove, this);
        this.charts.set(name, c);
        this.io.observe(c.root);
        c.setEntry(this.store.byName.get(name));
      }
      this.container.append(this.charts.get(name).root); // keeps the layout's order
    });
    this.empty.hidden = names.length > 0;
    this._measure();
    this.force = true;
  }

  refreshCatalog() {
    for (const c of this.charts.values()) c.setEntry(this.store.byName.get(c.name));
  }

  setWindow(seconds) {
    this.windowS = seconds;
    this.force = true;
  }

  /** Show [from, to] (s) on every chart (a drag on any of them). */
  zoom(from, to) {
    if (!(to > from)) return;
    this.view = [from, to];
    this._viewChanged();
  }

  /** Move the shown range by `fraction` of its span (the mouse wheel); later than the newest: live. */
  pan(fraction) {
    const [from, to] = this.view || this._liveRange();
    const d = (to - from) * fraction;
    const newest = this._liveRange()[1];
    if (to + d >= newest && this.view) return this.live();
    if (to + d >= newest) return;
    this.view = [from + d, to + d];
    this._viewChanged();
  }

  /** Back to live: the newest window, scrolling. */
  live() {
    if (!this.view) return;
    this.view = null;
    this._viewChanged();
  }

  _liveRange() {
    let newest = -Infinity;
    for (const c of this.charts.values()) newest = Math.max(newest, this.store.series.get(c.name)?.lastTime ?? -Infinity);
    if (!Number.isFinite(newest)) newest = Date.now() / 1000;
    return [newest - this.windowS, newest];
  }

  _viewChanged() {
    this.force = true;
    this.store.dirty.series = true;
    this.onView?.(this.view);
  }

  setPaused(paused) {
    this.paused = paused;
    this.force = true;
  }

  /** The value shown beside each chart's name (at the table's pace, not every frame). */
  renderHeads(now) {
    for (const c of this.charts.values()) c.renderHead(now);
  }

  /** Redraw the charts whose data changed; returns how many were drawn. */
  render() {
    let drawn = 0;
    for (const c of this.charts.values()) if (c.render(this.windowS, this.paused, this.force, this.view)) drawn++;
    this.force = false;
    return drawn;
  }
}
