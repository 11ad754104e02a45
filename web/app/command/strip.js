// The read-only command strip every console shows (any role) when the server has a command
// channel: who holds command authority, any live arm, and the latest command records with
// their state, from the telemetry socket's hello (`authority`, `history`) and its `command`,
// `authority` and `arm` events (docs/commanding.md, "What telemetry consoles see").
// It has no controls: commanding is the director's panel (panel.js).
import { el } from "../format.js";
import { CommandHistory, argsText, recordChip } from "./history.js";

const SHOWN = 4; // records in the strip

export class CommandStrip {
  constructor(container) {
    this.container = container;
    this.history = new CommandHistory(SHOWN * 4);
    this.authority = null;
    this.arms = new Map(); // arm id -> arm event
    this.holder = el("span", { class: "strip-holder" });
    this.armed = el("span", { class: "strip-armed" });
    this.records = el("span", { class: "strip-records" });
    container.append(el("span", { class: "strip-title", text: "Commands" }), this.holder, this.armed, this.records);
    container.hidden = true;
  }

  /** A telemetry hello: shown only if the server has a command channel. */
  reset(hello) {
    const on = Array.isArray(hello.commands);
    this.container.hidden = !on;
    this.authority = hello.authority || null;
    this.history.reset(on ? hello.history || [] : []);
    this.arms.clear();
    this.render();
  }

  /** A telemetry message; true if the strip changed. */
  apply(m) {
    if (m.type === "command") this.history.put(m.record);
    else if (m.type === "authority") this.authority = m;
    else if (m.type === "arm") {
      if (m.action === "armed") this.arms.set(m.arm_id, m);
      else this.arms.delete(m.arm_id);
    } else return false;
    this.render();
    return true;
  }

  render() {
    const a = this.authority;
    this.holder.textContent = a?.holder ? `authority: ${a.holder} (${a.role})` : "authority: free";
    this.holder.classList.toggle("held", !!a?.holder);
    const arms = [...this.arms.values()];
    this.armed.hidden = arms.length === 0;
    this.armed.textContent = arms.map((x) => `ARMED ${x.command} ${argsText({ args: x.args })} by ${x.user}`).join(" · ");
    const records = this.history.latest(SHOWN);
    this.records.replaceChildren(...(records.length ? records.map(recordChip) : [el("span", { class: "strip-none", text: "no commands yet" })]));
  }
}
