// Protocol decode/encode (console protocol v1, docs/protocol.md): msgpack maps whose
// numeric arrays travel as little-endian binary blobs. decodeMessage() turns those blobs
// into typed arrays; 64-bit integers (times in ns) become Float64Array of numbers
// (exact to well under a microsecond for present-day times, which is all a console needs).
import { decode, encode } from "../vendor/msgpack/index.js";

export const PROTOCOL_VERSION = 1;

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// blob field -> element type
const BLOBS = {
  ids: "u4",
  min: "f8",
  max: "f8",
  last: "f8",
  value: "f8",
  count: "u4",
  limit: "i1",
  last_t: "i8",
  t: "i8",
};
const TYPED = { u4: Uint32Array, f8: Float64Array, i1: Int8Array };
const SIZE = { u4: 4, f8: 8, i1: 1, i8: 8 };

/** A typed array over a little-endian blob (copies only when unaligned or big-endian). */
export function blobArray(bytes, kind) {
  const size = SIZE[kind];
  const n = Math.floor(bytes.byteLength / size);
  if (kind === "i8") return int64Numbers(bytes, n);
  const Type = TYPED[kind];
  if (kind === "i1") return new Int8Array(bytes.buffer, bytes.byteOffset, n);
  if (LITTLE) {
    if (bytes.byteOffset % size === 0) return new Type(bytes.buffer, bytes.byteOffset, n);
    return new Type(bytes.slice(0, n * size).buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Type(n);
  for (let i = 0; i < n; i++) out[i] = kind === "f8" ? view.getFloat64(i * 8, true) : view.getUint32(i * 4, true);
  return out;
}

function int64Numbers(bytes, n) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const lo = view.getUint32(i * 8, true);
    const hi = view.getInt32(i * 8 + 4, true);
    out[i] = hi * 4294967296 + lo;
  }
  return out;
}

function withArrays(m) {
  for (const key in BLOBS) {
    const v = m[key];
    if (v instanceof Uint8Array) m[key] = blobArray(v, BLOBS[key]);
  }
  return m;
}

/** One server message (ArrayBuffer or Uint8Array) -> plain object with typed arrays. */
export function decodeMessage(data) {
  const m = decode(data instanceof Uint8Array ? data : new Uint8Array(data));
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw new Error("server message is not a map");
  return withArrays(m);
}

/** A tick's `bundle` as its `data` messages (each carrying the bundle's seq); others as they are. */
export function expandMessage(m) {
  if (m.type !== "bundle") return [m];
  return (m.frames || []).map((f) => withArrays(Object.assign(f, { seq: m.seq })));
}

const INT64 = { useBigInt64: true };

/** A client message as a binary msgpack frame; BigInt fields (since_ns) go as 64-bit integers. */
export function encodeMessage(message) {
  return encode(message, Object.values(message).some((v) => typeof v === "bigint") ? INT64 : undefined);
}
