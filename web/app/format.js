// Number, time and limit formatting shared by the views.

/** An engineering value with about five significant digits. */
export function fmtValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  const dp = a === 0 ? 2 : Math.min(4, Math.max(0, 4 - Math.floor(Math.log10(a))));
  return v.toFixed(dp);
}

/**
 * A parameter's value as what it is (catalog `kind`): an enumeration by name ("primary"; an
 * unnamed value as "? 7"), a counter or discrete as an integer, anything else as fmtValue.
 */
export function fmtParam(entry, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (entry?.kind === "enum") return entry.enum?.[String(Math.round(v))] ?? `? ${Math.round(v)}`;
  if (entry?.kind === "integer") return String(Math.round(v));
  return fmtValue(v);
}

/** A limit as short as it reads: 45000, 0.95, -2.5. */
function fmtLimit(v) {
  return String(Number(v.toPrecision(6)));
}

/** "W <-1 >4  C <-2.5 >6" from [crit lo, warn lo, warn hi, crit hi]. */
export function fmtLimits(limits) {
  if (!limits) return "";
  const [cl, wl, wh, ch] = limits;
  const part = (lo, hi) => [lo != null ? `<${fmtLimit(lo)}` : "", hi != null ? `>${fmtLimit(hi)}` : ""].filter(Boolean).join(" ");
  const out = [];
  const w = part(wl, wh);
  const c = part(cl, ch);
  if (w) out.push(`W ${w}`);
  if (c) out.push(`C ${c}`);
  return out.join("  ");
}

/** The CSS class of a limit state: -2/2 critical, -1/1 warning. */
export function limitClass(limit) {
  const a = Math.abs(limit);
  return a >= 2 ? "lim-crit" : a >= 1 ? "lim-warn" : "";
}

/** UTC time of day from ns since 1970: "HH:MM:SS.s", or to the ms with digits = 3. */
export function fmtTimeNs(ns, digits = 1) {
  if (!ns) return "—";
  const d = new Date(ns / 1e6);
  return d.toISOString().slice(11, 20 + digits);
}

/** The UTC day of year (IRIG 106 day-of-year, 1 = 1 January) of a time in seconds since 1970. */
export function dayOfYear(sec) {
  const d = new Date(sec * 1000);
  return Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

/**
 * Time-axis labels in UTC, 24-hour, like the table's UTC column: "HH:MM:SS" (".s" when the ticks
 * are under a second apart, "HH:MM" when they are minutes apart), the first label and each new
 * day with the IRIG day of year in front ("335 18:22:40").
 */
export function utcAxisLabels(splits, incr) {
  const cut = incr < 1 ? 21 : incr >= 60 && incr % 60 === 0 ? 16 : 19;
  let day = -1;
  return splits.map((t) => {
    const text = new Date(t * 1000).toISOString().slice(11, cut);
    const doy = dayOfYear(t);
    if (doy === day) return text;
    day = doy;
    return `${String(doy).padStart(3, "0")} ${text}`;
  });
}

export function fmtAge(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min`;
}

/**
 * Show `text` in `node`, writing only when it changed and then into the existing text node
 * (replacing the node would make the browser lay out and layerize the panel anew).
 */
export function setText(node, text) {
  const t = node.firstChild;
  if (t && t.nodeType === 3 && !t.nextSibling) {
    if (t.data !== text) t.data = text;
  } else if (node.textContent !== text) {
    node.textContent = text;
  }
}

/** "stale 12 s" for a value not updated for `age` ms (Infinity: none on this connection). */
export function fmtStale(age) {
  return Number.isFinite(age) ? `stale ${fmtAge(age)}` : "stale";
}

/** A small DOM helper: el("div", {class: "x", dataset: {a: 1}}, child, "text"). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
