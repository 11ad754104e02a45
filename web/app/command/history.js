// Command records as the server sends them (docs/commanding.md, "The record"): a small model
// that keeps the latest state of each record, and how a record reads for people. Shared by
// the director's panel (fed from /ws/command) and the read-only strip every console shows
// (fed from /ws/telemetry).
import { el, fmtTimeNs } from "../format.js";

export const STATES = ["QUEUED", "RELEASED", "SENT", "ACKNOWLEDGED", "COMPLETED", "REJECTED", "FAILED", "TIMED_OUT"];
export const TERMINAL = new Set(["COMPLETED", "REJECTED", "FAILED", "TIMED_OUT"]);

/** "ok" (completed), "bad" (rejected, failed, timed out) or "busy" (on its way). */
export function stateClass(state) {
  if (state === "COMPLETED") return "ok";
  if (TERMINAL.has(state)) return "bad";
  return "busy";
}

/** "bitrate=2000000" / "group=structures samples_per_frame=4". */
export function argsText(record) {
  return Object.entries(record.args || {}).map(([k, v]) => `${k}=${typeof v === "string" && /\s/.test(v) ? `"${v}"` : v}`).join(" ");
}

/** How many states a record has reached: a later copy of a record never has fewer. */
function progress(record) {
  return Object.keys(record.times || {}).length;
}

/** The time a record reached its current state (ns), or 0. */
export function stateTime(record) {
  return record.times?.[record.state] || 0;
}

/** The latest state of each record, newest first, at most `limit` kept. */
export class CommandHistory {
  constructor(limit = 200) {
    this.limit = limit;
    this.records = new Map(); // id -> record
    this.version = 0;
  }

  reset(records = []) {
    this.records.clear();
    for (const r of records) this.put(r);
    this.version++;
  }

  /** Keep `record` unless a copy that got further is already here; true if it changed. */
  put(record) {
    if (!record || typeof record.id !== "number") return false;
    const old = this.records.get(record.id);
    if (old && progress(old) > progress(record)) return false;
    this.records.set(record.id, record);
    if (this.records.size > this.limit) {
      const ids = [...this.records.keys()].sort((a, b) => a - b);
      for (const id of ids.slice(0, this.records.size - this.limit)) this.records.delete(id);
    }
    this.version++;
    return true;
  }

  latest(n = this.limit) {
    return [...this.records.values()].sort((a, b) => b.id - a.id).slice(0, n);
  }
}

/** "QUEUED 01:30:38.483 · RELEASED +0.2 ms · SENT +0.4 ms · ACKNOWLEDGED +26.5 ms · COMPLETED +26.5 ms" */
export function timesText(record) {
  const entries = STATES.filter((s) => record.times?.[s]).map((s) => [s, record.times[s]]);
  if (!entries.length) return "";
  const t0 = entries[0][1];
  return entries.map(([s, t], i) => {
    if (i === 0) return `${s} ${fmtTimeNs(t, 3)}`;
    const ms = (t - t0) / 1e6;
    return `${s} +${ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`}`;
  }).join(" · ");
}

/** One record as a list item of the panel's history. */
export function recordItem(r) {
  const cls = stateClass(r.state);
  const head = el("div", { class: "rec-head" },
    el("span", { class: "rec-id", text: `#${r.id}` }),
    r.hazardous ? el("span", { class: "rec-hazard", title: "hazardous: armed, then executed", text: "HAZARDOUS" }) : null,
    el("span", { class: "rec-name", text: r.name }),
    el("span", { class: `rec-state st-${cls}`, text: r.state }));
  const body = el("div", { class: "rec-body" },
    el("span", { class: "rec-args", text: argsText(r) }),
    r.sequence != null ? el("span", { class: "rec-seq", title: "uplink sequence number", text: `seq ${r.sequence}` }) : null);
  const meta = el("div", { class: "rec-meta" },
    el("span", { class: "rec-user", text: r.user }),
    el("span", { class: "rec-reason", text: r.reason ? `“${r.reason}”` : "no reason given" }),
    r.arm_id != null ? el("span", { class: "rec-arm", text: `arm ${r.arm_id}` }) : null);
  const times = el("div", { class: "rec-times", text: timesText(r) });
  const detail = r.code || r.detail ? el("div", { class: "rec-detail", text: `${r.code}${r.code && r.detail ? ": " : ""}${r.detail}` }) : null;
  return el("li", { class: `rec rec-${cls}`, dataset: { recordId: r.id, state: r.state } }, head, body, meta, times, detail);
}

/** The history list: one item per record, newest first, rebuilt only for records that changed. */
export class HistoryList {
  constructor(list, max = 100) {
    this.list = list;
    this.max = max;
    this.items = new Map(); // id -> {li, record}
    this.empty = el("li", { class: "rec-empty", text: "No commands yet." });
  }

  render(history) {
    const records = history.latest(this.max);
    const keep = new Set(records.map((r) => r.id));
    for (const id of [...this.items.keys()]) if (!keep.has(id)) this.items.delete(id);
    const nodes = records.map((r) => {
      let item = this.items.get(r.id);
      if (!item || item.record !== r) {
        item = { li: recordItem(r), record: r };
        this.items.set(r.id, item);
      }
      return item.li;
    });
    this.list.replaceChildren(...(nodes.length ? nodes : [this.empty]));
  }
}

/** A compact chip for the telemetry console's strip: "#5 SET_BITRATE COMPLETED 01:30:38 dan". */
export function recordChip(r) {
  const cls = stateClass(r.state);
  const title = [`#${r.id} ${r.name} ${argsText(r)}`, `${r.state} at ${fmtTimeNs(stateTime(r), 3)} UTC`, `by ${r.user}${r.reason ? `: ${r.reason}` : ""}`,
    r.detail ? `${r.code}: ${r.detail}` : ""].filter(Boolean).join("\n");
  return el("span", { class: `strip-rec st-${cls}`, title, dataset: { recordId: r.id, state: r.state } },
    el("span", { class: "strip-name", text: `#${r.id} ${r.name}` }),
    el("span", { class: "strip-state", text: r.state }),
    el("span", { class: "strip-time", text: fmtTimeNs(stateTime(r)).slice(0, 8) }),
    el("span", { class: "strip-user", text: r.user }));
}
