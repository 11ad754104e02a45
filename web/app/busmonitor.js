// The bus monitor panel: every MIL-STD-1553 message and ARINC-429 label the server has seen,
// defined or not, with its rate, error count and latest raw words. Opening the panel asks the
// server for its 1 Hz `bus_monitor` snapshots (docs/protocol.md); closing it stops them.

const hex = (w) => (w >>> 0).toString(16).toUpperCase().padStart(4, "0");
const rate = (r) => (r === null || r === undefined ? "–" : r.toFixed(r < 10 ? 2 : 1));

export class BusMonitorPanel {
  constructor(root, { onToggle }) {
    this.root = root;
    this.onToggle = onToggle;
    this.root.innerHTML = `<details class="busmon"><summary>Bus monitor <span class="busmon-count"></span></summary>
      <table class="busmon-table"><thead><tr><th>ch</th><th>message / label</th><th>words</th><th>rate Hz</th>
      <th>count</th><th>errors</th><th>latest</th></tr></thead><tbody></tbody></table></details>`;
    this.details = this.root.querySelector("details");
    this.body = this.root.querySelector("tbody");
    this.count = this.root.querySelector(".busmon-count");
    this.details.addEventListener("toggle", () => this.onToggle(this.details.open));
  }

  get open() { return this.details.open; }

  apply(m) {
    const rows = [];
    for (const r of m.mil1553 || []) {
      const what = r.mode_code !== null ? `RT${r.rt} ${r.tr} mode ${r.mode_code}` : `RT${r.rt} ${r.tr} SA${r.subaddress}`;
      rows.push([r.channel_id, `1553 ${what}${r.rt_to_rt ? ` ← RT${r.rt_to_rt.rt}` : ""}`, r.word_count ?? "", r,
        `${hex(r.latest.status)} | ${r.latest.data.slice(0, 8).map(hex).join(" ")}${r.latest.data.length > 8 ? " …" : ""}`]);
    }
    for (const r of m.arinc429 || []) {
      rows.push([r.channel_id, `429 bus ${r.bus} label ${r.label_octal} SDI ${r.sdi}`, 1, r,
        `${(r.latest.word >>> 0).toString(16).toUpperCase().padStart(8, "0")} SSM ${r.latest.ssm}`]);
    }
    this.count.textContent = `(${(m.mil1553 || []).length} messages, ${(m.arinc429 || []).length} labels)`;
    const html = rows.map(([ch, what, words, r, latest]) =>
      `<tr class="${r.error_count ? "busmon-err" : ""}"><td>${ch}</td><td>${what}</td><td>${words}</td>` +
      `<td>${rate(r.recent_rate_hz)}</td><td>${r.count}</td><td>${r.error_count}</td><td class="busmon-raw">${latest}</td></tr>`);
    this.body.innerHTML = html.join("");
  }
}
