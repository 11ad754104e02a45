// The parameter browser: the catalog by group, searchable by name, description, units or
// group, with a table and a chart toggle per parameter and "add all" per group.
import { el } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const TABLE_ICON = "M1 2h12M1 6h12M1 10h12M5 2v10";
const CHART_ICON = "M1 10l3-4 3 2 3-6 3 3";

function icon(d) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 14 12");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "12");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.5");
  svg.append(path);
  return svg;
}

export class ParamBrowser {
  constructor(container, store, { onToggle, onAddGroup }) {
    this.store = store;
    this.onToggle = onToggle; // (name, "table"|"chart", on)
    this.onAddGroup = onAddGroup; // (group, "table"|"chart")
    this.search = el("input", { type: "search", class: "search", placeholder: "Search parameters…", "aria-label": "search parameters" });
    this.search.addEventListener("input", () => this._filter());
    this.list = el("div", { class: "groups" });
    container.append(this.search, this.list);
    this.items = new Map(); // name -> {row, table, chart, text}
    this.sections = [];
    this.selection = { table: new Set(), chart: new Set() };
  }

  renderCatalog() {
    const cat = this.store.catalog;
    this.items.clear();
    this.sections = [];
    const groups = new Map(cat.groups.map((g) => [g, []]));
    for (const p of cat.params) {
      if (!groups.has(p.group)) groups.set(p.group, []);
      groups.get(p.group).push(p);
    }
    const nodes = [];
    for (const [group, params] of groups) {
      if (!params.length) continue;
      const rows = params.map((p) => this._item(p));
      const section = el("details", { class: "group", open: true, dataset: { group } },
        el("summary", {},
          el("span", { class: "group-name", text: group }),
          el("span", { class: "group-count", text: String(params.length) }),
          el("button", { class: "add-group", title: `add every ${group} parameter to the table`,
            onclick: (e) => { e.preventDefault(); this.onAddGroup(group, "table"); } }, "+table"),
          el("button", { class: "add-group", title: `chart every ${group} parameter`,
            onclick: (e) => { e.preventDefault(); this.onAddGroup(group, "chart"); } }, "+chart")),
        ...rows);
      this.sections.push({ section, rows });
      nodes.push(section);
    }
    if (!nodes.length) nodes.push(el("p", { class: "empty" }, "Waiting for the vehicle's configuration (TMATS)…"));
    this.list.replaceChildren(...nodes);
    this.setSelection(this.selection.table, this.selection.chart);
    this._filter();
  }

  _item(p) {
    const table = el("button", { class: "to-table", title: "show in the table", "aria-pressed": "false",
      onclick: () => this.onToggle(p.name, "table", table.getAttribute("aria-pressed") !== "true") }, icon(TABLE_ICON));
    const chart = el("button", { class: "to-chart", title: "show as a strip chart", "aria-pressed": "false",
      onclick: () => this.onToggle(p.name, "chart", chart.getAttribute("aria-pressed") !== "true") }, icon(CHART_ICON));
    const row = el("div", { class: "param", dataset: { param: p.name }, title: p.description || "" },
      el("span", { class: "param-name", text: p.name }),
      el("span", { class: "param-units", text: p.units || "" }),
      table, chart);
    this.items.set(p.name, { row, table, chart, text: `${p.name} ${p.description} ${p.units} ${p.group}`.toLowerCase() });
    return row;
  }

  setSelection(table, chart) {
    this.selection = { table: new Set(table), chart: new Set(chart) };
    for (const [name, it] of this.items) {
      it.table.setAttribute("aria-pressed", String(this.selection.table.has(name)));
      it.chart.setAttribute("aria-pressed", String(this.selection.chart.has(name)));
    }
  }

  _filter() {
    const q = this.search.value.trim().toLowerCase();
    for (const { section, rows } of this.sections) {
      let shown = 0;
      for (const row of rows) {
        const hit = !q || this.items.get(row.dataset.param).text.includes(q);
        row.hidden = !hit;
        shown += hit;
      }
      section.hidden = shown === 0;
    }
  }
}
