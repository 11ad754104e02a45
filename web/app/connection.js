// The console's WebSocket: connect, reconnect with exponential backoff (and jitter),
// and tell the app when a session starts so it can resubscribe (the server then sends a
// snapshot). Sign-in problems are told apart from an unreachable server by asking the same
// URL over plain HTTP: the server answers 401/403 there when the token is refused.
import { decodeMessage, encodeMessage, expandMessage } from "./codec.js";

export const BACKOFF = { first: 250, max: 8000, factor: 2 };

export class Connection {
  /**
   * @param {object} o
   * @param {() => string|null} o.token      the stored token, or null (open mode)
   * @param {(m: object) => void} o.onMessage every decoded server message
   * @param {(s: object) => void} o.onState   {state: "connecting"|"open"|"waiting"|"signin", ...}
   * @param {() => object} [o.query]          extra query parameters, e.g. {position: "propulsion"}
   */
  constructor({ token, onMessage, onState, path = "/ws/telemetry", query = () => ({}) }) {
    this.token = token;
    this.query = query; // more query parameters of the handshake ({position}), empty values left out
    this.onMessage = onMessage;
    this.onState = onState;
    this.path = path;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.nextId = 1;
    this.state = { state: "idle" };
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    const t = this.token();
    if (t) q.set("token", t);
    for (const [k, v] of Object.entries(this.query())) if (v) q.set(k, v);
    const qs = q.toString();
    return `${proto}//${location.host}${this.path}${qs ? `?${qs}` : ""}`;
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this._open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "console closed");
      this.ws = null;
    }
  }

  /** Skip the backoff wait and try now (another socket to the same server just connected). */
  retryNow() {
    if (this.stopped || this.ws) return;
    this._open();
  }

  /** Send a client message; returns its request id (or null if not connected). */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(encodeMessage({ ...message, id }));
    return id;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  _setState(s) {
    this.state = s;
    this.onState(s);
  }

  _open() {
    clearTimeout(this.timer);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this._retry(`cannot connect: ${err.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let opened = false;
    this._setState({ state: "connecting", attempt: this.attempt });
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.nextId = 1;
      this._setState({ state: "open" });
    };
    ws.onmessage = (ev) => {
      let m;
      try {
        m = decodeMessage(ev.data);
      } catch (err) {
        console.warn("undecodable server message", err);
        return;
      }
      for (const part of expandMessage(m)) this.onMessage(part);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4001) {
        this._setState({ state: "signin", reason: ev.reason || "token expired or refused" });
        return;
      }
      if (opened) {
        const why = ev.code === 4008 ? `the server closed this console: ${ev.reason}` : `connection lost (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`;
        this._retry(why);
      } else {
        this._diagnose();
      }
    };
  }

  /** The handshake failed: a refused token, or a server that is not there (yet). */
  async _diagnose() {
    let status = 0;
    let reason = "";
    try {
      const url = `${this.path}${this.token() ? `?token=${encodeURIComponent(this.token())}` : ""}`;
      const r = await fetch(url, { cache: "no-store" });
      status = r.status;
      reason = r.statusText;
    } catch {
      status = 0;
    }
    if (this.stopped || this.ws) return; // stopped, or retryNow() opened a new socket meanwhile
    if (status === 401 || status === 403) {
      this._setState({ state: "signin", reason: reason || (status === 401 ? "a token is required" : "not allowed") });
    } else if (status === 0) {
      this._retry("server unreachable");
    } else {
      this._retry("the server refused the WebSocket (origin not allowed?)");
    }
  }

  _retry(reason) {
    const base = Math.min(BACKOFF.max, BACKOFF.first * BACKOFF.factor ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this._setState({ state: "waiting", reason, delay, attempt: this.attempt, until: performance.now() + delay });
    this.timer = setTimeout(() => this._open(), delay);
  }
}
