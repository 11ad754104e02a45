// Targeted alerts (`alert` messages, sent with POST /api/alert to console positions or
// users): a strip under the header, one row per alert not yet dismissed, coloured by
// severity (info, warning, critical), with the sender, the text and the time. Apart from
// the limit alarms: nothing to acknowledge, only read and dismiss.
import { el, fmtTimeNs } from "./format.js";

const SEVERITIES = ["info", "warning", "critical"];

export class AlertStrip {
  constructor(container, store) {
    this.container = container;
    this.store = store;
    this.list = el("ul", { class: "alert-list" });
    container.append(this.list);
  }

  render() {
    const shown = this.store.alerts.filter((a) => !a.dismissed);
    this.container.hidden = shown.length === 0;
    const worst = Math.max(-1, ...shown.map((a) => SEVERITIES.indexOf(a.severity)));
    this.container.className = `alerts alerts-${SEVERITIES[worst] || "info"}`;
    this.list.replaceChildren(...shown.map((a) => this._item(a)));
  }

  _item(a) {
    const sev = SEVERITIES.includes(a.severity) ? a.severity : "info";
    return el("li", { class: `alert alert-${sev}`, dataset: { alert: a.alert, severity: sev }, role: "alert" },
      el("span", { class: "alert-sev", text: sev.toUpperCase() }),
      el("span", { class: "alert-from", text: `from ${a.from || "?"}` }),
      el("span", { class: "alert-text", text: a.text }),
      el("span", { class: "alert-time", text: `${fmtTimeNs(a.t_ns, 1)} UTC` }),
      el("button", { class: "alert-dismiss", title: "dismiss this alert", "aria-label": "dismiss",
        onclick: () => this.store.dismissAlert(a.alert) }, "×"));
  }
}
