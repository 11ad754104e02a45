// The console layout (table parameters, charted parameters, update rate, time window),
// saved per user in localStorage.

export const RATES = [1, 2, 5, 10, 20, 50];
export const WINDOWS = [10, 30, 60, 120, 300, 600, 1800, 3600];
const KEY = "gs.layout.v1.";
const DEFAULT_CHARTS = ["ALT", "IAS", "NZ", "EGT"];

export function defaultLayout(catalog) {
  const names = catalog.params.map((p) => p.name);
  const charts = DEFAULT_CHARTS.filter((n) => names.includes(n));
  return { table: names.slice(0, 40), charts: charts.length ? charts : names.slice(0, 4), rate: 20, window: 60 };
}

function valid(x) {
  const names = (v) => Array.isArray(v) && v.every((n) => typeof n === "string");
  return x && names(x.table) && names(x.charts) && RATES.includes(x.rate) && WINDOWS.includes(x.window);
}

export function loadLayout(user) {
  try {
    const x = JSON.parse(localStorage.getItem(KEY + user) || "null");
    return valid(x) ? x : null;
  } catch {
    return null;
  }
}

export function saveLayout(user, layout) {
  try {
    localStorage.setItem(KEY + user, JSON.stringify(layout));
  } catch {
    /* storage full or disabled: the layout lasts for this page only */
  }
}
