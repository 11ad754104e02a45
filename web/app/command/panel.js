// The director's command panel (docs/commanding.md). Mounted only for the roles that may
// command (director, admin, from the telemetry hello) when the server has a command channel
// (the hello carries `commands`); a viewer or engineer gets nothing, not a disabled panel.
//
//   - its own WebSocket to /ws/command (channel.js: same token, same reconnect with backoff);
//   - command authority: who holds it; Take / Release (Override for an admin);
//   - a form per command built from its definition (form.js), a required reason, a fresh
//     client_seq per request; the server's refusals shown next to the argument they name;
//   - hazardous commands: Arm, then Execute (with the arm's countdown) or Disarm; there is
//     no Execute control without a live arm, and no Send for a hazardous command;
//   - the live history (history.js), updated from the `command` events.
//
// Contract (main.js): mountCommandPanel({ role, user, host, token, hello }) -> CommandPanel
// or null. The panel appends its element to `host`; main.js calls dispose() when the session
// changes (another user, role or token, sign-out) and resume() after a telemetry reconnect.
import { el, fmtTimeNs } from "../format.js";
import { CommandChannel, nextClientSeq } from "./channel.js";
import { ArgsForm, bigChanges, readable, refusedArgument } from "./form.js";
import { CommandHistory, HistoryList, argsText, stateClass } from "./history.js";

export const COMMAND_ROLES = ["director", "admin"];
export const COMMAND_PANEL_AVAILABLE = true;
const MAX_REASON = 500; // the server cuts a reason there (MAX_REASON_CHARS)

export function mountCommandPanel({ role, user, host, token = () => null, hello = null, current = () => NaN }) {
  if (!COMMAND_ROLES.includes(role)) return null;
  if (hello && !Array.isArray(hello.commands)) return null; // the server runs without a command channel
  const panel = new CommandPanel({ role, user, host, token, commands: hello?.commands });
  panel.current = current; // a parameter's latest value (the large-change confirmation)
  return panel;
}

export class CommandPanel {
  constructor({ role, user, host, token, commands }) {
    this.role = role;
    this.user = user;
    this.defs = new Map();
    this.authority = null; // the latest authority event / state
    this.arms = new Map(); // arm id -> {event, deadline (performance.now() ms), total ms}
    this.armItems = new Map(); // arm id -> its list item and controls
    this.historyVersion = -1;
    this.following = null; // the record id the form's message follows
    this.history = new CommandHistory();
    this.linkState = { state: "idle" };
    this.busy = false;
    this.form = null;
    this.timer = null;
    this.channel = new CommandChannel({ token, onMessage: (m) => this._onMessage(m), onState: (s) => this._onState(s) });
    this._build();
    if (commands) this._setDefinitions(commands);
    host.append(this.element);
    document.body.classList.add("commanding");
    this.channel.start();
    this.render();
  }

  // -- life cycle --------------------------------------------------------------------------
  dispose() {
    this.channel.stop();
    clearInterval(this.timer);
    this.timer = null;
    this.element.remove();
    document.body.classList.remove("commanding");
  }

  /** The telemetry socket (re)connected, so the server is there: restart the command
   * channel if it gave up, or skip its backoff wait. */
  resume() {
    if (this.channel.stopped) this.channel.start();
    else this.channel.conn.retryNow();
  }

  // -- DOM ---------------------------------------------------------------------------------
  _build() {
    this.linkBadge = el("span", { class: "badge", id: "cmd-link" });
    this.holder = el("span", { class: "holder", id: "cmd-holder" });
    this.takeBtn = el("button", { type: "button", id: "cmd-take", onclick: () => this._authority("take") }, "Take");
    this.releaseBtn = el("button", { type: "button", id: "cmd-release", onclick: () => this._authority("release") }, "Release");
    this.overrideBtn = this.role === "admin"
      ? el("button", { type: "button", id: "cmd-override", class: "danger", onclick: () => this._authority("override") }, "Override")
      : null;
    this.authMsg = el("p", { class: "cp-msg", id: "cmd-authority-msg", role: "status" });

    this.nameSel = el("select", { id: "cmd-name", name: "command", onchange: () => this._selectCommand(this.nameSel.value) });
    this.desc = el("p", { class: "cmd-desc" });
    this.argsHost = el("div", { class: "cmd-args-host" });
    this.reason = el("input", { id: "cmd-reason", name: "reason", type: "text", maxlength: MAX_REASON, autocomplete: "off",
      placeholder: "why: test point, request, …", required: true });
    this.reasonError = el("span", { class: "arg-error", id: "cmd-reason-error", role: "alert" });
    this.reason.addEventListener("input", () => { this.reasonError.textContent = ""; });
    this.effect = el("p", { class: "cmd-effect" });
    // type "button": Enter in a field never sends a command, only a click does
    this.sendBtn = el("button", { type: "button", id: "cmd-send", class: "primary", onclick: () => this._submit() }, "Send");
    this.armBtn = el("button", { type: "button", id: "cmd-arm", class: "arm", onclick: () => this._submit() }, "Arm");
    this.hint = el("p", { class: "cp-hint", id: "cmd-hint" });
    this.msg = el("p", { class: "cp-msg", id: "cmd-msg", role: "status" });
    this.formEl = el("form", { id: "cmd-form", class: "cp-form", novalidate: true, onsubmit: (e) => e.preventDefault() },
      el("div", { class: "arg" }, el("label", { for: "cmd-name", text: "Command" }), this.nameSel),
      this.desc,
      this.argsHost,
      el("div", { class: "arg", dataset: { arg: "reason" } }, el("label", { for: "cmd-reason", text: "Reason" }), this.reason, this.reasonError),
      this.effect,
      el("div", { class: "cp-actions" }, this.sendBtn, this.armBtn),
      this.hint,
      this.msg);

    this.armsList = el("ul", { class: "cp-arms", id: "cmd-arms" });
    this.historyList = el("ol", { class: "cp-history", id: "cmd-history" });
    this.historyView = new HistoryList(this.historyList);

    this.element = el("section", { id: "command-panel", class: "command-panel", "aria-label": "command panel" },
      el("header", { class: "cp-head" }, el("h2", { text: "Command" }), this.linkBadge),
      el("div", { class: "cp-authority", id: "cmd-authority" },
        el("div", { class: "cp-row" }, el("span", { class: "cp-label", text: "Authority" }), this.holder),
        el("div", { class: "cp-row cp-buttons" }, this.takeBtn, this.releaseBtn, this.overrideBtn),
        this.authMsg),
      this.formEl,
      this.armsList,
      el("h3", { text: "History" }),
      this.historyList);
  }

  _setDefinitions(commands) {
    if (JSON.stringify(commands) === JSON.stringify([...this.defs.values()])) return; // a reconnect: keep the form
    const current = this.form?.def.name;
    this.defs = new Map(commands.map((d) => [d.name, d]));
    this.nameSel.replaceChildren(...commands.map((d) => new Option(`${d.hazardous ? "⚠ " : ""}${d.name}`, d.name)));
    this.form = null;
    this._selectCommand(this.defs.has(current) ? current : commands[0]?.name);
  }

  _selectCommand(name) {
    const def = this.defs.get(name);
    if (!def) return;
    this.nameSel.value = name;
    if (this.form?.def !== def) {
      this.form = new ArgsForm(def);
      this.argsHost.replaceChildren(this.form.element);
    }
    this.desc.textContent = def.description || "";
    this.effect.textContent = def.effect ? `Completed when ${def.effect}` : "Completed when acknowledged";
    this.formEl.classList.toggle("hazardous", !!def.hazardous);
    this._setMsg(this.msg, "");
    this.reasonError.textContent = "";
    this.render();
  }

  // -- messages ----------------------------------------------------------------------------
  _onMessage(m) {
    switch (m.type) {
      case "hello":
        this.user = m.user;
        this.role = m.role;
        if (Array.isArray(m.commands)) this._setDefinitions(m.commands);
        this.authority = m.authority || null;
        this.history.reset(m.history || []);
        this.arms.clear(); // the live arms follow the hello as arm events
        break;
      case "command":
        this.history.put(m.record);
        break;
      case "authority":
        this.authority = m;
        break;
      case "arm":
        this._onArm(m);
        break;
      case "error":
        this._setMsg(this.msg, `server: ${m.message || m.code}`, "error");
        break;
      default:
        return;
    }
    this.render();
  }

  _onState(s) {
    this.linkState = s;
    if (s.state === "signin") {
      // refused at the handshake (401/403): the telemetry console handles signing in again
      this.channel.conn.stop();
    }
    this.render();
  }

  _onArm(ev) {
    if (ev.action !== "armed") {
      const had = this.arms.delete(ev.arm_id);
      if (had && ev.action === "disarmed" && ev.user === this.user) {
        this._setMsg(this.msg, `arm ${ev.arm_id} (${ev.command}) disarmed: ${ev.detail}`, "warn");
      }
      return;
    }
    // The countdown runs on this browser's clock: the full arm time from now for a fresh
    // arm, what is left by the wall clock (capped at the arm time) for one seen on reconnect.
    const total = Math.max(0, (ev.expires_ns - ev.armed_ns) / 1e6);
    const fresh = Date.now() - ev.armed_ns / 1e6 < 2000;
    const left = fresh ? total : Math.min(total, Math.max(0, ev.expires_ns / 1e6 - Date.now()));
    this.arms.set(ev.arm_id, { event: ev, total, deadline: performance.now() + left });
    if (!this.timer) this.timer = setInterval(() => this._tick(), 100);
  }

  _tick() {
    if (!this.arms.size) {
      clearInterval(this.timer);
      this.timer = null;
      return;
    }
    this._renderCountdowns();
  }

  // -- requests ----------------------------------------------------------------------------
  _canCommand() {
    return this.channel.connected && this.authority?.holder === this.user && !this.busy;
  }

  async _request(message) {
    this.busy = true;
    this.render();
    try {
      return await this.channel.request(message);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async _authority(action) {
    this._setMsg(this.authMsg, "");
    let reply;
    try {
      reply = await this._request({ type: "authority", action });
    } catch (err) {
      this._setMsg(this.authMsg, err.message, "error");
      return;
    }
    if (reply.type === "authority_ok") {
      this.authority = reply.authority;
    } else {
      this._setMsg(this.authMsg, reply.message || reply.code, "error");
    }
    this.render();
  }

  /** The form's request fields, or null (errors shown) if something is missing. */
  _collect() {
    const def = this.defs.get(this.nameSel.value);
    if (!def || !this.form) return null;
    this.form.clearErrors();
    this.reasonError.textContent = "";
    this._setMsg(this.msg, "");
    const { args, errors } = this.form.read();
    for (const [name, text] of Object.entries(errors)) this.form.showError(name, text);
    const reason = this.reason.value.trim();
    if (!reason) this.reasonError.textContent = "a reason is required";
    if (Object.keys(errors).length || !reason) return null;
    return { def, name: def.name, args, reason };
  }

  async _submit() {
    if (!this._canCommand()) return;
    const req = this._collect();
    if (!req) return;
    const big = bigChanges(req.def, req.args, this.current || (() => NaN));
    if (big.length && !(await this._confirm(req.def, big))) return;
    const type = req.def.hazardous ? "arm" : "command";
    let reply;
    try {
      reply = await this._request({ type, name: req.name, args: req.args, reason: req.reason, client_seq: nextClientSeq() });
    } catch (err) {
      this._setMsg(this.msg, err.message, "error");
      return;
    }
    this._reply(reply, req.def);
  }

  /** Ask before a large change: old → new in readable units; resolves true on Confirm. */
  _confirm(def, big) {
    this.confirmEl?.remove();
    return new Promise((resolve) => {
      const done = (ok) => {
        box.remove();
        this.confirmEl = null;
        resolve(ok);
      };
      const box = el("div", { class: "cp-confirm", id: "cmd-confirm", role: "alertdialog" },
        el("p", { class: "cp-confirm-title", text: `${def.name}: a large change — confirm` }),
        ...big.map((c) => el("p", { class: "cp-confirm-change", dataset: { arg: c.arg } },
          el("span", { class: "arg-name", text: `${c.arg} ` }), el("span", { class: "from", text: readable(c.from, c.units) }),
          " → ", el("strong", { class: "to", text: readable(c.to, c.units) }),
          ` (×${Number((c.to / c.from).toPrecision(3))})`)),
        el("div", { class: "cp-actions" },
          el("button", { type: "button", id: "cmd-confirm-yes", class: "danger", onclick: () => done(true) }, "Confirm"),
          el("button", { type: "button", id: "cmd-confirm-no", onclick: () => done(false) }, "Cancel")));
      this.confirmEl = box;
      this.formEl.append(box);
    });
  }

  _reply(reply, def) {
    if (reply.type === "accepted") {
      this.history.put(reply.record);
      this.following = reply.record.id; // the message under the form follows its state
      this.reason.value = "";
    } else if (reply.type === "armed") {
      this._setMsg(this.msg, `${def?.name || "command"} armed (arm ${reply.arm}): Execute or Disarm below`, "warn");
      this.reason.value = "";
      this.form?.clearChoices(); // a hazardous choice is never left standing for the next one
    } else if (reply.type === "rejected") {
      this.history.put(reply.record);
      this._refused(reply.record.code, reply.record.detail, reply.argument);
    } else {
      this._refused(reply.code, reply.message, reply.argument);
    }
    this.render();
  }

  /** A refusal: next to the argument it names if the form has it, else under the form. */
  _refused(code, detail, argument) {
    const name = refusedArgument(detail, argument);
    const shown = name && this.form?.has(name) && this.form.showError(name, (detail || "").replace(/^[A-Z_]+: /, ""));
    this._setMsg(this.msg, shown ? `refused (${code}): see ${name}` : `refused (${code}): ${detail}`, "error");
  }

  async _execute(armId) {
    let reply;
    try {
      reply = await this._request({ type: "execute", arm: armId, client_seq: nextClientSeq() });
    } catch (err) {
      this._setMsg(this.msg, err.message, "error");
      return;
    }
    this._reply(reply, null);
  }

  async _disarm(armId) {
    let reply;
    try {
      reply = await this._request({ type: "disarm", arm: armId });
    } catch (err) {
      this._setMsg(this.msg, err.message, "error");
      return;
    }
    if (reply.type === "disarmed") {
      this.arms.delete(armId);
      this._setMsg(this.msg, `arm ${armId} disarmed`, "");
    } else {
      this._setMsg(this.msg, `disarm refused (${reply.code}): ${reply.message}`, "error");
    }
    this.render();
  }

  // -- rendering ---------------------------------------------------------------------------
  _setMsg(node, text, level = "") {
    if (node === this.msg) this.following = null;
    node.textContent = text;
    node.className = `cp-msg ${level}`;
  }

  render() {
    const s = this.linkState;
    const connected = this.channel?.connected ?? false;
    let text;
    let cls;
    if (connected) [text, cls] = ["CONNECTED", "ok"];
    else if (s.state === "connecting") [text, cls] = [s.attempt ? "RECONNECTING" : "CONNECTING", "warn"];
    else if (s.state === "waiting") [text, cls] = [`RETRY IN ${Math.max(0, (s.until - performance.now()) / 1000).toFixed(1)} s`, "bad"];
    else if (s.state === "signin") [text, cls] = ["REFUSED", "bad"];
    else [text, cls] = ["OFFLINE", "bad"];
    this.linkBadge.textContent = text;
    this.linkBadge.className = `badge ${cls}`;
    this.linkBadge.title = s.reason || "";

    // authority
    const a = this.authority;
    const holder = a?.holder ?? null;
    const mine = holder !== null && holder === this.user;
    this.holder.textContent = holder === null ? "free: nobody holds command authority"
      : `${mine ? "you" : holder} (${a.role})${a.since_ns ? ` since ${fmtTimeNs(a.since_ns)} UTC` : ""}`;
    this.holder.className = `holder ${mine ? "mine" : holder === null ? "free" : "other"}`;
    this.element.classList.toggle("has-authority", mine);
    this.takeBtn.disabled = !connected || this.busy || holder !== null;
    this.takeBtn.title = holder !== null && !mine ? `held by ${holder}${this.role === "admin" ? ": use Override" : ": ask them to release it"}` : "take command authority";
    this.releaseBtn.disabled = !connected || this.busy || holder === null || !(mine || this.role === "admin");
    if (this.overrideBtn) this.overrideBtn.disabled = !connected || this.busy || mine;

    // the form
    const def = this.defs.get(this.nameSel.value);
    const can = this._canCommand();
    const hazardous = !!def?.hazardous;
    this.sendBtn.hidden = hazardous;
    this.armBtn.hidden = !hazardous;
    this.sendBtn.disabled = this.armBtn.disabled = !can;
    this.form?.setDisabled(!connected || !mine);
    this.reason.disabled = !connected || !mine;
    this.hint.textContent = !connected ? "The command channel is not connected."
      : !mine ? "Take command authority to send commands."
        : hazardous ? "Hazardous: Arm it, then Execute within the arm time." : "";

    const followed = this.following != null ? this.history.records.get(this.following) : null;
    if (followed) {
      const text = `#${followed.id} ${followed.name}: ${followed.state}${followed.detail ? ` (${followed.detail})` : ""}`;
      if (this.msg.textContent !== text) this.msg.textContent = text;
      this.msg.className = `cp-msg ${{ ok: "ok", bad: "error", busy: "" }[stateClass(followed.state)]}`;
    }

    this._renderArms(can);
    if (this.historyVersion !== this.history.version) {
      this.historyView.render(this.history);
      this.historyVersion = this.history.version;
    }
  }

  /** One item per live arm, kept across renders (a click is never lost to a redraw). */
  _renderArms(can) {
    for (const [id, item] of this.armItems) {
      if (!this.arms.has(id)) {
        item.li.remove();
        this.armItems.delete(id);
      }
    }
    for (const [id, arm] of [...this.arms.entries()].sort((x, y) => x[0] - y[0])) {
      let item = this.armItems.get(id);
      if (!item) {
        item = this._armItem(id, arm.event);
        this.armItems.set(id, item);
        this.armsList.append(item.li); // arm ids only grow: a new arm goes last
      }
      item.arm = arm;
      if (item.execute) item.execute.disabled = !can || performance.now() >= arm.deadline;
      if (item.disarm) item.disarm.disabled = !this.channel.connected;
    }
    this.armsList.hidden = this.arms.size === 0;
    this._renderCountdowns();
  }

  _armItem(id, ev) {
    const own = ev.user === this.user;
    const execute = own ? el("button", { type: "button", class: "execute danger", id: `cmd-execute-${id}`,
      onclick: () => this._execute(id) }, "Execute") : null;
    const disarm = own || this.role === "admin" ? el("button", { type: "button", class: "disarm", id: `cmd-disarm-${id}`,
      onclick: () => this._disarm(id) }, "Disarm") : null;
    const countdown = el("span", { class: "arm-countdown" });
    const fill = el("span", { class: "arm-bar-fill" });
    const li = el("li", { class: `arm-item${own ? " own" : ""}`, dataset: { armId: id } },
      el("div", { class: "arm-what" },
        el("span", { class: "arm-label", text: ev.hazardous ? "ARMED · HAZARDOUS" : "ARMED" }),
        el("span", { class: "arm-name", text: `${ev.command} ${argsText({ args: ev.args })}` })),
      el("div", { class: "arm-by", text: `${own ? "by you" : `by ${ev.user}`}: “${ev.reason}”` }),
      el("div", { class: "arm-actions" }, execute, disarm, countdown),
      el("span", { class: "arm-bar" }, fill));
    return { li, execute, disarm, countdown, fill, arm: null };
  }

  _renderCountdowns() {
    const now = performance.now();
    for (const item of this.armItems.values()) {
      const arm = item.arm;
      if (!arm) continue;
      const left = Math.max(0, arm.deadline - now);
      const text = left > 0 ? `expires in ${(left / 1000).toFixed(1)} s` : "expired";
      if (item.countdown.textContent !== text) item.countdown.textContent = text;
      item.fill.style.width = `${arm.total ? (100 * left) / arm.total : 0}%`;
      if (left <= 0 && item.execute) item.execute.disabled = true;
    }
  }
}
