// The console position (e.g. "propulsion"): the server sends targeted alerts to the consoles
// of a position. Chosen in the header's Position field, saved per user like the layout, and
// given as ?position= on the WebSocket handshake (a change reconnects the console).
import { el } from "./format.js";

const KEY = "gs.position.v1.";

/** The user a token names (its `sub`), or null; the open mode's user is "operator". */
export function tokenUser(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || null;
  } catch {
    return null;
  }
}

export function loadPosition(user) {
  try {
    return localStorage.getItem(KEY + user) || "";
  } catch {
    return "";
  }
}

function savePosition(user, position) {
  try {
    if (position) localStorage.setItem(KEY + user, position);
    else localStorage.removeItem(KEY + user);
  } catch {
    /* storage disabled: the position lasts for this page only */
  }
}

export class PositionField {
  /**
   * @param {HTMLElement} container
   * @param {() => string} user   the signed-in user (the key the position is saved under)
   * @param {() => void} onChange the position changed: reconnect
   */
  constructor(container, user, onChange) {
    this.user = user;
    this.override = ""; // kept for this page when storage is disabled
    this.input = el("input", { id: "position", name: "position", size: 12, maxlength: 64, placeholder: "none",
      spellcheck: "false", title: "your console position: targeted alerts to this position reach this console" });
    this.input.addEventListener("change", () => {
      const p = this.input.value.trim();
      savePosition(this.user(), p);
      this.override = p;
      onChange();
    });
    container.append(el("label", { class: "position" }, "Position ", this.input));
    this.refresh();
  }

  /** The position for the handshake. */
  value() {
    return loadPosition(this.user()) || this.override;
  }

  /** Show the current user's position (after a sign-in). */
  refresh() {
    if (document.activeElement !== this.input) this.input.value = this.value();
  }
}
