// The parameter table: engineering value, units, the last interval's min/max, sample time
// and limits, with the value cell coloured by its limit state (amber warning, red critical;
// held for a moment so a one-sample excursion is seen). A stale value (connection down, link
// lost, or no update within the parameter's stale timeout) is hatched with its age.
import { el, fmtLimits, fmtParam, fmtStale, fmtTimeNs, limitClass, setText } from "./format.js";

export class ParamTable {
  constructor(container, store, { onRemove }) {
    this.store = store;
    this.onRemove = onRemove;
    this.rows = new Map(); // name -> {tr, cells, version}
    this.body = el("tbody");
    this.empty = el("p", { class: "empty" }, "No parameters: add some from the parameter list.");
    container.append(
      el("table", { class: "params" },
        el("thead", {}, el("tr", {},
          el("th", { class: "c-name", text: "Parameter" }), el("th", { class: "c-value num", text: "Value" }),
          el("th", { class: "c-units", text: "Units" }), (this.minTh = el("th", { class: "c-min num", text: "Min" })),
          (this.maxTh = el("th", { class: "c-max num", text: "Max" })), el("th", { class: "c-time", text: "UTC" }),
          el("th", { class: "c-limits", text: "Limits" }), el("th", { class: "c-remove" }))),
        this.body),
      this.empty);
  }

  setParams(names) {
    for (const [name, row] of this.rows) {
      if (!names.includes(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    for (const name of names) {
      let row = this.rows.get(name);
      if (!row) {
        row = this._row(name);
        this.rows.set(name, row);
      }
      this.body.append(row.tr);
    }
    this.empty.hidden = names.length > 0;
    this.refreshCatalog();
  }

  _row(name) {
    const cells = {
      name: el("td", { class: "name", text: name }),
      value: el("td", { class: "value num", text: "—" }),
      units: el("td", { class: "units" }),
      min: el("td", { class: "min num", text: "—" }),
      max: el("td", { class: "max num", text: "—" }),
      time: el("td", { class: "time", text: "—" }),
      limits: el("td", { class: "limits" }),
    };
    const remove = el("button", { class: "row-remove", title: `remove ${name} from the table`, onclick: () => this.onRemove(name) }, "×");
    const tr = el("tr", { dataset: { param: name } }, cells.name, cells.value, cells.units, cells.min, cells.max,
      cells.time, cells.limits, el("td", {}, remove));
    return { tr, cells, version: -1, cls: "", stale: null };
  }

  refreshCatalog() {
    for (const [name, row] of this.rows) {
      const p = this.store.byName.get(name);
      row.cells.units.textContent = p?.units || "";
      row.cells.limits.textContent = p ? fmtLimits(p.limits) : "not in the current configuration";
      row.cells.limits.title = row.cells.limits.textContent;
      row.cells.name.title = p?.description || "";
      row.tr.classList.toggle("unknown", !p);
      row.version = -1;
    }
  }

  render(now = performance.now()) {
    // Min/Max are those of the last update interval (1/rate): the heading says so
    const interval = `${Math.round(1000 / this.store.rate)} ms`;
    if (this.minInterval !== interval) {
      this.minInterval = interval;
      this.minTh.replaceChildren("Min", el("small", { class: "interval", text: interval }));
      this.maxTh.replaceChildren("Max", el("small", { class: "interval", text: interval }));
      this.minTh.title = this.maxTh.title = `smallest and largest sample of the last ${interval} update interval`;
    }
    for (const [name, row] of this.rows) {
      const v = this.store.values.get(name);
      if (!v) continue;
      const stale = this.store.staleness(name, now);
      const cls = limitClass(this.store.shownLimit(v, now));
      const staleText = stale === null ? "" : fmtStale(stale);
      if (cls !== row.cls || staleText !== row.stale) {
        row.cells.value.className = `value num ${cls}`;
        row.tr.className = `${cls ? `row-${cls}` : ""}${stale === null ? "" : " stale"}`;
        row.cls = cls;
        row.stale = staleText;
        row.cells.time.title = staleText;
        row.version = -1;
      }
      if (v.version === row.version) continue;
      row.version = v.version;
      const p = this.store.byName.get(name);
      setText(row.cells.value, fmtParam(p, v.value));
      const range = p?.kind !== "enum" && v.count > 1;
      if (row.stale) { // the interval's min/max mean nothing now: their cells say how old the value is
        setText(row.cells.min, "stale");
        setText(row.cells.max, row.stale.replace(/^stale ?/, "") || "—");
      } else {
        setText(row.cells.min, range ? fmtParam(p, v.min) : "");
        setText(row.cells.max, range ? fmtParam(p, v.max) : "");
      }
      setText(row.cells.time, fmtTimeNs(v.t));
    }
  }
}
