// The header's status: connection, link state, the edge node's data path (while lost), data
// age, sequence gaps, the REPLAY indicator and who is signed in.
import { el, fmtAge, setText } from "./format.js";

export const SILENT_MS = 1500; // an open connection with nothing from the server this long is shown amber

export class StatusBar {
  constructor(container, store, { onSignOut }) {
    this.store = store;
    this.conn = el("span", { class: "badge conn", id: "conn-state" });
    this.link = el("span", { class: "badge link", id: "link-state" });
    this.bus = el("span", { class: "badge bus", id: "bus-state", hidden: true }, "DATA PATH LOST");
    this.age = el("span", { class: "age", id: "data-age" });
    this.gaps = el("span", { class: "gaps", id: "seq-gaps" });
    this.rate = el("span", { class: "badge rate warn", id: "rate-limited", hidden: true });
    this.rateLimit = null; // the server's last rate_limited message, for the session it came in
    this.replay = el("span", { class: "badge replay", id: "replay", hidden: true, title: "the data is a recording being replayed, not live" }, "REPLAY");
    this.who = el("span", { class: "who", id: "who" });
    this.signOut = el("button", { class: "sign-out", hidden: true, onclick: onSignOut }, "Sign out");
    this.notice = el("span", { class: "notice", id: "notice" });
    container.append(this.replay, this.conn, this.link, this.bus, this.age, this.rate, this.gaps, this.notice, this.who, this.signOut);
    this.connState = { state: "idle" };
    this.hasToken = false;
  }

  setConnection(s) {
    this.connState = s;
    this.store.dirty.status = true;
  }

  /** The server shed (or restored) this console's update rate: shown until it is back at the requested one. */
  setRateLimit(m) {
    this.rateLimit = { m, hello: this.store.hello };
    this.store.dirty.status = true;
  }

  render(now = performance.now()) {
    const s = this.connState;
    let text;
    let cls;
    const silent = now - this.store.lastMessageLocal;
    if (s.state === "open" && this.store.lastMessageLocal && silent > SILENT_MS) {
      [text, cls] = [`NO REPLY ${fmtAge(silent)}`, "warn"];
    } else if (s.state === "open") [text, cls] = ["CONNECTED", "ok"];
    else if (s.state === "connecting") [text, cls] = [s.attempt ? "RECONNECTING" : "CONNECTING", "warn"];
    else if (s.state === "waiting") [text, cls] = [`RETRY IN ${Math.max(0, (s.until - now) / 1000).toFixed(1)} s`, "bad"];
    else if (s.state === "signin") [text, cls] = ["SIGN-IN NEEDED", "bad"];
    else [text, cls] = ["OFFLINE", "bad"];
    this._set(this.conn, text, `badge conn ${cls}`, s.reason || "");
    const live = s.state === "open";
    const link = this.store.link || {};
    const lstate = live ? link.state || "WAITING" : "UNKNOWN";
    this._set(this.link, `LINK ${lstate}`, `badge link ${lstate === "OK" ? "ok" : lstate === "LOST" ? "bad" : "warn"}`, link.reason || "");
    const bus = this.store.bus;
    this.bus.hidden = !(live && bus?.state === "LOST");
    this.bus.title = bus?.node ? `the edge node ${bus.node} gets no data from the ingest node (its bus is down)` : "";
    const age = live ? this.store.dataAge(now) : null;
    this._set(this.age, `data age ${fmtAge(age)}`, `age ${age !== null && age > 2000 ? "stale" : ""}`);
    const m = this.rateLimit?.hello === this.store.hello ? this.rateLimit.m : null;
    const rl = m && m.level > 0 && m.subs.length ? m : null;
    this.rate.hidden = !(live && rl);
    if (rl) this._set(this.rate, `RATE ${Math.min(...rl.subs.map((s) => s.rate))} Hz`, "badge rate warn", rl.reason);
    this._set(this.gaps, this.store.gaps ? `seq gaps ${this.store.gaps}` : "", "gaps");
    this.replay.hidden = !this.store.source?.replay;
    document.body.classList.toggle("replay", !!this.store.source?.replay);
    const h = this.store.hello;
    this._set(this.who, h ? `${h.user} · ${h.role}` : "", "who");
    this.signOut.hidden = !this.hasToken;
    const n = this.store.notice;
    const shown = n && now - n.at < 8000 ? n.text : "";
    this._set(this.notice, shown, `notice ${n?.level || ""}`);
  }

  _set(node, text, cls, title) {
    setText(node, text);
    if (node.className !== cls) node.className = cls;
    if (title !== undefined && node.title !== title) node.title = title;
  }
}
