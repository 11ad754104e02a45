// Sign-in with a token (issued by `groundstation token`). The token is kept in
// localStorage and sent as ?token= on the WebSocket. In the open mode (the demo) the server
// accepts a console without a token and this dialog never shows.
import { el } from "./format.js";

const KEY = "gs.token";

export const auth = {
  token() {
    try {
      return localStorage.getItem(KEY) || null;
    } catch {
      return null;
    }
  },
  setToken(t) {
    if (t) localStorage.setItem(KEY, t);
    else localStorage.removeItem(KEY);
  },
};

export class SignIn {
  constructor(onSubmit) {
    this.input = el("input", { type: "password", id: "token", name: "token", autocomplete: "off", spellcheck: "false",
      placeholder: "paste your token", "aria-label": "token" });
    this.reason = el("p", { class: "signin-reason" });
    const form = el("form", { class: "signin-box", onsubmit: (e) => {
      e.preventDefault();
      const t = this.input.value.trim();
      if (!t) return;
      auth.setToken(t);
      this.hide();
      onSubmit(t);
    } },
    el("h2", {}, "Sign in"),
    this.reason,
    el("label", { for: "token" }, "Token"),
    this.input,
    el("p", { class: "hint" }, "Ask your test director for a token (groundstation token USER --role ROLE)."),
    el("button", { type: "submit", class: "primary" }, "Sign in"));
    this.root = el("div", { class: "signin", id: "signin", hidden: true }, form);
    document.body.append(this.root);
  }

  show(reason) {
    this.reason.textContent = reason ? `The server refused the connection: ${reason}.` : "";
    this.root.hidden = false;
    this.input.value = "";
    this.input.focus();
  }

  hide() {
    this.root.hidden = true;
  }
}
