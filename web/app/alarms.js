// The alarm banner: every active alarm (raised, escalated, back in limits but not yet
// acknowledged, acknowledged but still out of limits) with an Acknowledge button. An
// alarm leaves the banner when the server clears it (acknowledged and back in limits).
import { el, fmtTimeNs, fmtValue } from "./format.js";

/** Roles the server lets acknowledge alarms (a viewer sees the alarms, without the button). */
export const ACK_ROLES = ["engineer", "director", "admin"];

export class AlarmBanner {
  constructor(container, store, { onAck }) {
    this.container = container;
    this.store = store;
    this.onAck = onAck;
    this.list = el("ul", { class: "alarm-list" });
    this.title = el("span", { class: "alarm-title" });
    container.append(this.title, this.list);
    this.pending = new Set(); // alarm ids whose ack was sent
  }

  render() {
    const alarms = [...this.store.alarms.values()].sort((a, b) =>
      (a.acknowledged_by ? 1 : 0) - (b.acknowledged_by ? 1 : 0) || b.severity.localeCompare(a.severity) || a.id - b.id);
    this.container.hidden = alarms.length === 0;
    const unacked = alarms.filter((a) => !a.acknowledged_by).length;
    this.title.textContent = `${alarms.length} alarm${alarms.length === 1 ? "" : "s"}${unacked ? `, ${unacked} unacknowledged` : ""}`;
    this.container.classList.toggle("critical", alarms.some((a) => a.severity === "CRITICAL" && !a.acknowledged_by));
    this.list.replaceChildren(...alarms.map((a) => this._item(a)));
  }

  _item(a) {
    const sev = a.severity === "CRITICAL" ? "crit" : "warn";
    const state = a.acknowledged_by
      ? `acknowledged by ${a.acknowledged_by}${a.returned_ns ? "" : ", still out of limits"}`
      : a.returned_ns ? "back in limits, not acknowledged" : "out of limits";
    const entry = this.store.byId.get(a.param);
    const units = entry?.units ? ` ${entry.units}` : "";
    const mayAck = ACK_ROLES.includes(this.store.hello?.role);
    const ack = a.acknowledged_by || !mayAck ? null : el("button", {
      class: "ack",
      disabled: this.pending.has(a.id),
      onclick: () => {
        this.pending.add(a.id);
        this.onAck(a.id);
        this.render();
      },
    }, "Acknowledge");
    return el("li", { class: `alarm alarm-${sev}${a.acknowledged_by ? " acked" : ""}`, dataset: { alarmId: a.id, param: a.name } },
      el("span", { class: "sev", text: a.severity }),
      el("span", { class: "alarm-name", text: a.name }),
      el("span", { class: "alarm-detail", text: `${a.direction} ${fmtValue(a.value)}${units} at ${fmtTimeNs(a.triggered_ns, 3)} UTC` }),
      el("span", { class: "alarm-state", text: state }),
      ack);
  }

  /** The server answered an ack (acked or error): the button can be used again if needed. */
  settled(alarmId) {
    this.pending.delete(alarmId);
  }
}
