// The console: wires the connection, the store and the views, keeps the layout and the
// subscription in step, and draws on animation frames.
import { AlarmBanner } from "./alarms.js";
import { AlertStrip } from "./alerts.js";
import { BusMonitorPanel } from "./busmonitor.js";
import { ParamBrowser } from "./browser.js";
import { Charts } from "./charts.js";
import { PROTOCOL_VERSION } from "./codec.js";
import { mountCommandPanel } from "./command/panel.js";
import { CommandStrip } from "./command/strip.js";
import { Connection } from "./connection.js";
import { History } from "./history.js";
import { RATES, WINDOWS, defaultLayout, loadLayout, saveLayout } from "./layout.js";
import { PositionField, tokenUser } from "./position.js";
import { Resume } from "./resume.js";
import { SignIn, auth } from "./signin.js";
import { StatusBar } from "./status.js";
import { Store } from "./store.js";
import { ParamTable } from "./table.js";

const $ = (sel) => document.querySelector(sel);

const store = new Store();
let layout = null; // {table, charts, rate, window}
let layoutUser = null;
let pendingSub = null;
const stats = { draws: 0, renders: 0, messages: 0, connection: [] }; // for the tests and the benchmark

const status = new StatusBar($("#status"), store, { onSignOut: signOut });
const ackRequests = new Map(); // request id -> alarm id
const alarms = new AlarmBanner($("#alarms"), store, {
  onAck: (alarm) => {
    const req = conn.send({ type: "ack", alarm });
    if (req === null) alarms.settled(alarm);
    else ackRequests.set(req, alarm);
  },
});
const browser = new ParamBrowser($("#browser"), store, { onToggle: toggle, onAddGroup: addGroup });
const table = new ParamTable($("#table"), store, { onRemove: (name) => toggle(name, "table", false) });
const charts = new Charts($("#charts"), store, { onRemove: (name) => toggle(name, "chart", false) });
charts.onVisible = () => schedule();
charts.onView = (view) => { $("#live").hidden = !view; schedule(); };
$("#live").addEventListener("click", () => charts.live());
const commandStrip = new CommandStrip($("#cmd-strip"));
const alertStrip = new AlertStrip($("#alerts"), store);
const signin = new SignIn(() => conn.start());
const busMonitor = new BusMonitorPanel($("#busmon"), { onToggle: (on) => conn.send({ type: "bus_monitor", on }) });
// the position goes in the handshake: a new one takes a reconnect (which resumes with backfill)
const position = new PositionField($(".top"), () => tokenUser(auth.token()) || store.hello?.user || "operator",
  () => { if (!conn.stopped) { conn.stop(); conn.start(); } });
const conn = new Connection({ token: () => auth.token(), onMessage, onState, query: () => ({ position: position.value() }) });
const resume = new Resume(store, (m) => conn.send(m));
const history = new History(store, (m) => conn.send(m)); // the charts' window from the recording

// -- controls ----------------------------------------------------------------------
const windowSel = $("#window");
const rateSel = $("#rate");
const pauseBtn = $("#pause");
for (const w of WINDOWS) windowSel.append(new Option(w < 60 ? `${w} s` : w < 3600 ? `${w / 60} min` : `${w / 3600} h`, String(w)));
for (const r of RATES) rateSel.append(new Option(`${r} Hz`, String(r)));
windowSel.addEventListener("change", () => changeLayout((l) => { l.window = Number(windowSel.value); }));
rateSel.addEventListener("change", () => changeLayout((l) => { l.rate = Number(rateSel.value); }));
pauseBtn.addEventListener("click", () => setPaused(!charts.paused));

function setPaused(paused) {
  charts.setPaused(paused);
  pauseBtn.textContent = paused ? "Resume" : "Pause";
  pauseBtn.setAttribute("aria-pressed", String(paused));
  $("#charts-panel").classList.toggle("paused", paused);
  schedule();
}

// -- layout --------------------------------------------------------------------------
function applyLayout() {
  if (!layout) return;
  browser.setSelection(layout.table, layout.charts);
  table.setParams(layout.table);
  store.setView(layout.rate, layout.window);
  store.keepSeries(layout.charts);
  charts.setParams(layout.charts);
  charts.setWindow(layout.window);
  history.setView(layout.charts, layout.window, layout.rate);
  windowSel.value = String(layout.window);
  rateSel.value = String(layout.rate);
  schedule();
}

function ensureLayout() {
  if (layout && layoutUser === store.hello?.user) return true;
  if (!store.hello) return false;
  const saved = loadLayout(store.hello.user);
  if (!saved && !store.catalog.params.length) return false; // defaults need the catalog
  layout = saved || defaultLayout(store.catalog);
  layoutUser = store.hello.user;
  if (!saved) saveLayout(layoutUser, layout);
  applyLayout();
  return true;
}

function changeLayout(mutate) {
  if (!layout) return;
  const before = JSON.stringify([[...new Set([...layout.table, ...layout.charts])].sort(), layout.rate]);
  mutate(layout);
  layout.table = [...new Set(layout.table)];
  layout.charts = [...new Set(layout.charts)];
  saveLayout(layoutUser, layout);
  applyLayout();
  if (JSON.stringify([[...new Set([...layout.table, ...layout.charts])].sort(), layout.rate]) !== before) subscribe();
}

function toggle(name, where, on) {
  changeLayout((l) => {
    const key = where === "chart" ? "charts" : "table";
    l[key] = on ? [...l[key], name] : l[key].filter((n) => n !== name);
  });
}

function addGroup(group, where) {
  const names = store.catalog.params.filter((p) => p.group === group).map((p) => p.name);
  changeLayout((l) => {
    const key = where === "chart" ? "charts" : "table";
    l[key] = [...l[key], ...names];
  });
}

// -- subscription ------------------------------------------------------------------
function subscribe() {
  if (!conn.connected || !layout) return;
  const names = [...new Set([...layout.table, ...layout.charts])].filter((n) => store.byName.has(n));
  if (!names.length) {
    for (const sub of [...store.subscriptions.keys()]) if (store.claimUnsubscribe(sub)) conn.send({ type: "unsubscribe", sub });
    pendingSub = null;
    return;
  }
  pendingSub = conn.send({ type: "subscribe", names, rate: layout.rate, ...resume.subscribeFields() });
  resume.subscribeSent(pendingSub);
}

function onMessage(m) {
  stats.messages++;
  if (m.type === "hello") store.reset();
  store.apply(m);
  resume.apply(m);
  history.apply(m);
  switch (m.type) {
    case "hello":
      if (m.protocol !== PROTOCOL_VERSION) {
        conn.stop();
        store.note(`the server speaks console protocol ${m.protocol}; this console speaks ${PROTOCOL_VERSION}`, "error");
        status.setConnection({ state: "idle", reason: "unsupported protocol" });
        return;
      }
      status.hasToken = !!auth.token();
      pendingSub = null;
      ensureLayout();
      position.refresh();
      resume.sessionStarted(layout ? [...layout.table, ...layout.charts] : []);
      history.sessionStarted();
      browser.renderCatalog();
      table.refreshCatalog();
      charts.refreshCatalog();
      commandStrip.reset(m);
      mountCommands(m);
      subscribe();
      if (busMonitor.open) conn.send({ type: "bus_monitor", on: true });
      break;
    case "bus_monitor":
      busMonitor.apply(m);
      break;
    case "command":
    case "authority":
    case "arm":
      commandStrip.apply(m);
      break;
    case "catalog":
      browser.renderCatalog();
      table.refreshCatalog();
      charts.refreshCatalog();
      ensureLayout();
      if (!store.subscriptions.size && pendingSub === null) subscribe();
      break;
    case "subscribed":
      if (m.id !== null && m.id === pendingSub) {
        pendingSub = null;
        for (const sub of [...store.subscriptions.keys()]) if (sub !== m.sub && !history.owns(sub) && store.claimUnsubscribe(sub)) conn.send({ type: "unsubscribe", sub });
      }
      break;
    case "rate_limited":
      status.setRateLimit(m);
      break;
    case "acked":
      ackRequests.delete(m.id);
      alarms.settled(m.alarm);
      break;
    case "error":
      if (m.id === pendingSub) pendingSub = null;
      if (m.id !== null && ackRequests.has(m.id)) {
        alarms.settled(ackRequests.get(m.id));
        ackRequests.delete(m.id);
        store.dirty.alarms = true;
      }
      break;
    default:
  }
}

function onState(s) {
  store.live = s.state === "open";
  if (store.live && store.notice?.text.startsWith("connection:")) store.notice = null; // back: the loss is over
  stats.connection.push({ state: s.state, attempt: s.attempt, delay: s.delay, at: Math.round(performance.now()) });
  if (stats.connection.length > 100) stats.connection.shift();
  status.setConnection(s);
  schedule();
  if (s.state === "signin") {
    conn.stop();
    unmountCommands();
    auth.setToken(null);
    signin.show(s.reason);
  } else if (s.state === "waiting" && s.attempt === 1) {
    store.note(`connection: ${s.reason}; reconnecting`, "warn");
  }
}

// The director's command panel (director and admin only; see command/panel.js). It keeps its
// own connection across telemetry reconnects of the same session, and goes with the session.
let commandPanel = null;
let commandSession = null;
function mountCommands(hello) {
  const session = JSON.stringify([hello.user, hello.role, auth.token(), Array.isArray(hello.commands)]);
  if (commandPanel && session === commandSession) {
    commandPanel.resume();
    return;
  }
  unmountCommands();
  commandPanel = mountCommandPanel({ role: hello.role, user: hello.user, host: $("#workspace"), token: () => auth.token(), hello,
    current: (name) => store.values.get(name)?.value });
  commandSession = session;
}

function unmountCommands() {
  commandPanel?.dispose();
  commandPanel = null;
  commandSession = null;
}

function signOut() {
  conn.stop();
  unmountCommands();
  auth.setToken(null);
  status.hasToken = false;
  status.setConnection({ state: "signin" });
  signin.show("");
}

// -- drawing -------------------------------------------------------------------------
// Frames are requested only when something changed (a message, or the status clock), never
// in a free-running loop. Charts redraw on the next animation frame after their data
// changed; the table and the chart headers at most TEXT_HZ times a second (numbers that
// change faster cannot be read, and text repaints cost more than the charts).
const TEXT_HZ = 5;
const GATHER_MS = 8; // the frames of one server tick (one per parameter group) are drawn together
let scheduled = false;
let gathering = false;
let lastText = -1e9;
let lastStatus = -1e9;
let lastFrame = -1e9;
let tickT = 0;

function schedule() {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(frame);
  }
}

function onStoreChange(kind, m) {
  if (kind !== "data") {
    schedule();
  } else if (m.t !== tickT) {
    // first frame of a new tick: wait a moment for the other groups' frames, then one draw
    tickT = m.t;
    if (!gathering) {
      gathering = true;
      setTimeout(() => { gathering = false; schedule(); }, GATHER_MS);
    }
  }
}

function frame(now) {
  scheduled = false;
  lastFrame = now;
  const d = store.dirty;
  d.catalog = false;
  stats.draws += charts.render(); // only the charts whose series changed are redrawn
  d.series = false;
  // text at most TEXT_HZ, in the same frames as the charts (the clock below catches the rest);
  // the status line's clock goes with it, so that text changes cost one relayout per tick
  const textDue = now - lastText >= 1000 / TEXT_HZ - 20;
  if (d.values && textDue && !charts.paused) { // paused: every value shown stays as it was
    table.render(now);
    charts.renderHeads(now);
    d.values = false;
    lastText = now;
  }
  if (d.alerts) {
    alertStrip.render();
    d.alerts = false;
  }
  if (d.alarms) {
    alarms.render();
    d.alarms = false;
  }
  if (d.status || (textDue && now - lastStatus >= 1000 / TEXT_HZ - 20)) {
    status.render(now);
    d.status = false;
    lastStatus = now;
  }
  stats.renders++;
}

store.onChange(onStoreChange);
// A silent connection (no frames, no pongs): pinged after PING_AFTER_MS of silence, shown amber
// by the status bar after SILENT_MS, dropped and reopened after DEAD_MS.
const PING_AFTER_MS = 600;
const DEAD_MS = 10_000;
let lastPing = 0;
setInterval(() => {
  // the clock: data age, retry countdown, limit colours whose hold ran out, stale ages (in a
  // frame of its own only when no data frame came by)
  const t = performance.now();
  if (store.live && t - store.lastMessageLocal > PING_AFTER_MS && t - lastPing > 500) {
    lastPing = t;
    conn.send({ type: "ping" });
  }
  if (store.live && store.lastMessageLocal && t - store.lastMessageLocal > DEAD_MS) {
    store.note("connection: no reply from the server; reconnecting", "warn");
    conn.stop();
    conn.start();
  }
  store.dirty.values = true;
  if (performance.now() - lastFrame > 200) {
    store.dirty.status = true;
    schedule();
  }
}, 250);

window.gs = { store, conn, charts, table, stats, history, commandStrip, get layout() { return layout; }, get commandPanel() { return commandPanel; } };
status.render();
alarms.render();
conn.start();
document.documentElement.dataset.ready = "1";
