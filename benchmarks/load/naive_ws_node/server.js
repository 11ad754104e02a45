// The naive node `ws` peer of the capacity benchmark (benchmarks/load/capacity.py).
//
//   node server.js --udp 127.0.0.1:0 --http 127.0.0.1:0 [--python PATH]
//
// Our decoder (python -m benchmarks.load.feeder, started here as a child) receives the
// simulator's UDP stream and writes one msgpack message per decoded batch on its stdout,
// the same bytes naive_ws.py broadcasts. This server sends each to every console,
// wss.clients.forEach(c => c.send(buf)): no subscriptions, no decimation, no backpressure
// (ws buffers without bound for a slow console). Client messages are read and ignored.
// GET /healthz answers JSON like the other servers (the feeder's ingest counters, its pid).
'use strict';
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const { WebSocketServer, WebSocket } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
function hostPort(s) {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

const [udpHost, udpPort] = hostPort(arg('--udp', '127.0.0.1:0'));
const [httpHost, httpPort] = hostPort(arg('--http', '127.0.0.1:0'));
const python = arg('--python', process.env.PYTHON || 'python3');
// the decoder's tree: the benchmark's --server-tree snapshot if any (python -m puts cwd first on the path)
const root = process.env.GS_BENCH_SERVER_TREE || path.resolve(__dirname, '..', '..', '..');

const started = Date.now();
let feederHealth = null;
let broadcasts = 0;
let deliveries = 0;
let listening = false;

const feeder = spawn(python, ['-m', 'benchmarks.load.feeder', '--udp', `${udpHost}:${udpPort}`],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
feeder.on('exit', (code) => { console.error(`feeder exited (${code})`); process.exit(1); });

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    const body = {
      status: 'ok', uptime_s: (Date.now() - started) / 1000, ...(feederHealth || {}),
      feeder_pid: feeder.pid, consoles: wss.clients.size, broadcasts, deliveries,
    };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  } else {
    res.writeHead(404);
    res.end();
  }
});
const wss = new WebSocketServer({ server, path: '/ws/telemetry', perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => { ws.on('message', () => {}); ws.on('error', () => {}); });

function broadcast(buf) {
  let n = 0;
  wss.clients.forEach((c) => { if (c.readyState === WebSocket.OPEN) { c.send(buf); n += 1; } });
  if (n) { broadcasts += 1; deliveries += n; }
}

function onHealth(h) {
  feederHealth = h;
  if (listening) return;
  listening = true;
  server.listen(httpPort, httpHost, () => {
    const port = server.address().port;
    console.log(`naive-node: UDP ${udpHost}:${h.udp_port}, WebSocket ws://${httpHost}:${port}/ws/telemetry`);
  });
}

// records: <u32 LE length><kind><body>, kind 'D' (a message for every console) or 'H' (JSON health)
let pending = Buffer.alloc(0);
feeder.stdout.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  let pos = 0;
  while (pending.length - pos >= 4) {
    const len = pending.readUInt32LE(pos);
    if (pending.length - pos - 4 < len) break;
    const kind = pending[pos + 4];
    const body = pending.subarray(pos + 5, pos + 4 + len);
    pos += 4 + len;
    if (kind === 0x44) broadcast(Buffer.from(body)); // 'D': own copy, pending is reused
    else if (kind === 0x48) onHealth(JSON.parse(body.toString()));
  }
  pending = pending.subarray(pos);
});

function stop() {
  feeder.removeAllListeners('exit');
  feeder.kill('SIGTERM');
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
