// The command panel boundary (director console), NOT BUILT in this version of the console.
//
// mountCommandPanel() renders nothing for every role: no command control reaches the page,
// whoever is signed in. The telemetry `hello` may carry `commands`, `authority` and
// `history` (see docs/commanding.md); the console ignores them for now.
//
// When the panel is built, this folder holds all of it and nothing outside changes except
// main.js's single call to mountCommandPanel():
//   - its own connection to the command endpoint (/ws/command, authenticated at the
//     handshake), not the telemetry socket;
//   - authority take/release, argument forms built from the command definitions with range
//     hints, arm/execute for hazardous commands, live command history;
//   - mounted only for principals whose role allows commanding (director, admin); a viewer
//     or engineer gets nothing, not a disabled panel.
//
// Contract: mountCommandPanel({ role, user, host }) -> HTMLElement | null, where `host` is
// the element the panel may append itself to; main.js removes a returned element when the
// session changes.

export const COMMAND_PANEL_AVAILABLE = false;

export function mountCommandPanel(_ctx) {
  return null;
}
