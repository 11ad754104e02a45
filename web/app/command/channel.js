// The director's own WebSocket to /ws/command (docs/commanding.md, "/ws/command"): the same
// token as the telemetry socket (?token=, or none in open mode) and the same reconnect with
// exponential backoff, because it is the same Connection class on another path.
// request() sends one request and resolves with its reply (matched by id); the hello and
// the events (command, authority, arm; they carry no id) go to onMessage.
import { Connection } from "../connection.js";

/** client_seq: unique per user for as long as the server runs (replay protection), so it
 * starts from the clock (µs since 1970, a safe integer) and only ever increases, also
 * across reloads and across two tabs of the same user. */
let lastSeq = 0;
export function nextClientSeq() {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000 + Math.floor(Math.random() * 1000));
  return lastSeq;
}

export class CommandChannel {
  /**
   * @param {object} o
   * @param {() => string|null} o.token     the telemetry console's token (null in open mode)
   * @param {(m: object) => void} o.onMessage hello, events and replies nobody waits for
   * @param {(s: object) => void} o.onState  the Connection's states
   */
  constructor({ token, onMessage, onState }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.conn = new Connection({
      token,
      path: "/ws/command",
      onMessage: (m) => this._message(m),
      onState: (s) => this._state(s),
    });
  }

  start() {
    this.conn.start();
  }

  stop() {
    this.conn.stop();
    this._failPending("the command channel was closed");
  }

  get connected() {
    return this.conn.connected;
  }

  get stopped() {
    return this.conn.stopped;
  }

  /** Send a request; resolves with its reply, rejects if the channel is down or goes down first. */
  request(message) {
    return new Promise((resolve, reject) => {
      const id = this.conn.send(message);
      if (id === null) {
        reject(new Error("the command channel is not connected"));
        return;
      }
      this.pending.set(id, { resolve, reject });
    });
  }

  _message(m) {
    // replies carry the request's id; events and the hello carry none
    if (Object.hasOwn(m, "id") && this.pending.has(m.id)) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      p.resolve(m);
      return;
    }
    this.onMessage(m);
  }

  _state(s) {
    // ids restart with each connection: whatever was waiting will never get its reply
    if (s.state !== "open") this._failPending("the connection was lost before the reply; check the history");
    this.onState(s);
  }

  _failPending(why) {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new Error(why));
  }
}
