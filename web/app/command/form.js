// An argument form built from one command definition (hello.commands, docs/commanding.md
// "Definitions as consoles get them"): a number input per u32/i32/f32 argument with its
// min/max and units as range hints, a select per enum argument with its choice names, and
// an error line under each argument for what the server (or a missing value) says about it.
// The server validates; the form only refuses to send an empty field.
import { el } from "../format.js";

const BIG_CHANGE = 5; // a new value this many times larger (or smaller) than the current one asks first

/** "20,000,000 b/s (20 Mb/s)": digits grouped, and an SI prefix for big values. */
export function readable(v, units = "") {
  const grouped = Number(v).toLocaleString("en-US", { maximumFractionDigits: 6 });
  const a = Math.abs(v);
  const [div, p] = a >= 1e9 ? [1e9, "G"] : a >= 1e6 ? [1e6, "M"] : a >= 1e4 ? [1e3, "k"] : [1, ""];
  const si = p && units ? ` (${Number((v / div).toPrecision(4))} ${p}${units})` : "";
  return `${grouped}${units ? ` ${units}` : ""}${si}`;
}

/**
 * A change to confirm: [{arg, from, to, units}] for the numeric arguments whose current value
 * (from telemetry through the command's effect_value: param = arg * scale + offset) differs
 * from the new one by BIG_CHANGE times or more.
 */
export function bigChanges(def, args, current) {
  const ev = def.effect_value;
  if (!ev || !(ev.arg in args) || !ev.scale) return [];
  const tm = current(ev.param);
  if (!Number.isFinite(tm)) return [];
  const from = (tm - ev.offset) / ev.scale;
  const to = Number(args[ev.arg]);
  if (!Number.isFinite(to) || from === to || from === 0) return []; // from 0 no factor says "much larger"
  const ratio = Math.abs(to / from);
  if (ratio < BIG_CHANGE && ratio > 1 / BIG_CHANGE) return [];
  const spec = def.args.find((a) => a.name === ev.arg);
  if ((spec?.min != null && to < spec.min) || (spec?.max != null && to > spec.max)) return []; // refused anyway
  return [{ arg: ev.arg, from, to, units: spec?.units || "" }];
}

export class ArgsForm {
  constructor(def) {
    this.def = def;
    this.fields = new Map(); // argument name -> {input, error, spec}
    this.element = el("div", { class: "cmd-args" });
    if (!def.args.length) this.element.append(el("p", { class: "hint", text: "No arguments." }));
    for (const spec of def.args) {
      const id = `cmd-arg-${spec.name}`;
      let input;
      if (spec.kind === "enum") {
        input = el("select", { id, name: spec.name });
        input.append(new Option("— choose —", "", true, true)); // nothing chosen until someone does
        input.options[0].disabled = true;
        for (const choice of Object.keys(spec.choices || {})) input.append(new Option(choice, choice));
      } else {
        const integral = spec.kind !== "f32";
        input = el("input", {
          id, name: spec.name, type: "number", required: true, inputmode: integral ? "numeric" : "decimal",
          min: spec.min ?? undefined, max: spec.max ?? undefined, step: integral ? "1" : "any",
          placeholder: spec.allowed || "",
        });
      }
      const error = el("span", { class: "arg-error", role: "alert" });
      const hint = [spec.kind === "enum" ? (spec.units ? spec.units : "") : spec.allowed, spec.description].filter(Boolean).join(" · ");
      const row = el("div", { class: "arg", dataset: { arg: spec.name } },
        el("label", { for: id, text: spec.name }),
        input,
        spec.units && spec.kind !== "enum" ? el("span", { class: "arg-units", text: spec.units }) : null,
        el("span", { class: "arg-hint", text: hint }),
        error);
      input.addEventListener("input", () => this.showError(spec.name, ""));
      this.fields.set(spec.name, { input, error, spec, row });
      this.element.append(row);
    }
  }

  /** {args, errors}: the values to send (numbers as numbers, enum choices by name). */
  read() {
    const args = {};
    const errors = {};
    for (const [name, { input, spec }] of this.fields) {
      if (spec.kind === "enum") {
        if (input.value === "") errors[name] = `choose one: ${spec.allowed}`;
        else args[name] = input.value;
        continue;
      }
      const text = input.value.trim();
      if (input.validity.badInput || text === "") {
        errors[name] = `enter a number: ${spec.allowed}`;
        continue;
      }
      args[name] = Number(text);
    }
    return { args, errors };
  }

  /** Back to "— choose —" for every enumerated argument (after a hazardous command went). */
  clearChoices() {
    for (const { input, spec } of this.fields.values()) if (spec.kind === "enum") input.value = "";
  }

  has(name) {
    return this.fields.has(name);
  }

  showError(name, text) {
    const f = this.fields.get(name);
    if (!f) return false;
    f.error.textContent = text;
    f.row.classList.toggle("has-error", !!text);
    f.input.setAttribute("aria-invalid", text ? "true" : "false");
    return true;
  }

  clearErrors() {
    for (const name of this.fields.keys()) this.showError(name, "");
  }

  setDisabled(disabled) {
    for (const { input } of this.fields.values()) input.disabled = disabled;
  }
}

/** The argument a refusal names: the reply's `argument`, else the one quoted in its detail
 * ("SET_BITRATE: argument 'bitrate' = 5 is out of range: allowed 10000..20000000 b/s"). */
export function refusedArgument(detail, argument) {
  if (typeof argument === "string" && argument) return argument;
  const m = /\bargument '([^']+)'/.exec(detail || "");
  return m ? m[1] : null;
}
