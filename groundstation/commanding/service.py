"""The command service (sans-I/O): authorize, validate, queue, release one at a time, verify from telemetry.

The shell hands it requests (``submit``, ``arm``, ``execute``), decommutated telemetry
(``observe``), the clock (``tick``) and each datagram's fate (``sent``,
``send_failed``), and takes packets from ``next_to_send``. Every call returns events
for all consoles: ``{"type": "command", "record": ...}`` on each state change,
``{"type": "authority", ...}`` and ``{"type": "arm", ...}``. Every submit, arm or
execute attempt, accepted or not, writes exactly one audit entry.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..auth import Role
from .authority import Authority, AuthorityRefused, PrincipalLike, principal_role
from .definitions import CommandDef, CommandRejected, Value, check_args, display_args, index_definitions
from .echo import EchoSpec, read_echo
from .history import CommandRecord, History, State
from .jobs import Arm, Release, _Attempt, _Job
from .sanitize import is_int as _is_int
from .sanitize import safe_args as _safe_args
from .sanitize import safe_name as _safe_name

__all__ = ["Arm", "CommandService", "Encode", "Event", "Release"]

Event = dict[str, Any]
Encode = Callable[[int, int, list[tuple[str, Value]], bool], bytes]  # (sequence, opcode, args, armed) -> packet

MAX_REASON_CHARS = 500
_ENDED_ARMS_KEPT = 256


class CommandService:
    """All of commanding for one vehicle: authority, arms, queue, the one command in flight, history, audit."""

    def __init__(self, definitions: Iterable[CommandDef] | Mapping[str, CommandDef], encode: Encode, *,
                 authority: Authority | None = None, rate_limit: tuple[int, float] | None = (5, 10.0),
                 arm_timeout_s: float = 10.0, history_size: int = 1000, audit_size: int = 10_000,
                 on_audit: Callable[[dict], None] | None = None, sequence_start: int = 1,
                 count_modulus: int = 1 << 16, echo: EchoSpec | None = None) -> None:
        self.definitions = index_definitions(definitions)
        if echo is None:  # the simulated vehicle's verifier (its vehicle database file)
            from .vehicle_file import simulated_vehicle

            echo = simulated_vehicle().echo
        self.echo = echo
        self.encode = encode
        self.authority = authority if authority is not None else Authority()
        self.rate_limit, self.arm_timeout_s, self.count_modulus = rate_limit, arm_timeout_s, count_modulus
        self.history = History(history_size)
        self.audit: deque[dict] = deque(maxlen=audit_size)
        self._on_audit = on_audit
        self._queue: deque[_Job] = deque()
        self._flight: _Job | None = None
        self._arms: dict[int, Arm] = {}
        self._ended_arms: OrderedDict[int, tuple[Arm, str]] = OrderedDict()
        self._latest: dict[str, float] = {}
        self._client_seqs: dict[str, set[int]] = {}
        self._accepted_ns: dict[str, deque[int]] = {}
        self._next_id, self._next_arm, self._next_sequence = 1, 1, sequence_start

    # -- requests -------------------------------------------------------------------------------------------------
    def submit(self, principal: PrincipalLike, name: str, args: Mapping[str, object] | None = None, *,
               reason: str = "", client_seq: int | None = None, now_ns: int) -> list[Event]:
        """Queue a non-hazardous command, or refuse it (REJECTED record). The new record's event comes last."""
        a = self._attempt(principal, name, args, reason, client_seq)
        try:
            self._gate(principal, a)
            self._resolve(principal, a, now_ns)
            if a.defn.hazardous:
                raise CommandRejected("hazardous", f"{a.defn.name} is hazardous: arm it, then execute within"
                                      f" {self.arm_timeout_s:g} s")
            self._rate(a.user, now_ns, consume=True)
        except CommandRejected as e:
            return self._reject(a, e, now_ns)
        return self._accept(a, now_ns)

    def arm(self, principal: PrincipalLike, name: str, args: Mapping[str, object] | None = None, *,
            reason: str = "", client_seq: int | None = None,
            now_ns: int) -> tuple[int | None, int | None, list[Event]]:
        """Arm a command for ``execute`` within ``arm_timeout_s``: (arm_id, expires_ns, events); ids None if refused."""
        a = self._attempt(principal, name, args, reason, client_seq)
        try:
            self._gate(principal, a)
            self._resolve(principal, a, now_ns)
            self._rate(a.user, now_ns, consume=False)  # say so now rather than at execute
        except CommandRejected as e:
            return None, None, self._reject(a, e, now_ns)
        arm = Arm(self._next_arm, a.user, a.role, a.defn, a.values, a.reason, now_ns,
                  now_ns + int(self.arm_timeout_s * 1e9))
        self._next_arm += 1
        self._arms[arm.id] = arm
        a.arm_id = arm.id
        self._write_audit(now_ns, a, "armed")
        return arm.id, arm.expires_ns, [arm.as_wire("armed")]

    def execute(self, principal: PrincipalLike, arm_id: int, *, client_seq: int | None = None,
                now_ns: int) -> list[Event]:
        """Queue the command armed as ``arm_id`` (same user, before it expires), or refuse. Record's event last."""
        valid_id = _is_int(arm_id)
        arm = self._arms.get(arm_id) if valid_id else None
        known = arm or (self._ended_arms.get(arm_id, (None, ""))[0] if valid_id else None)
        a = self._attempt(principal, known.defn.name if known else "", {}, known.reason if known else "", client_seq)
        a.arm_id = arm_id if valid_id else None
        if known:
            a.defn, a.values = known.defn, known.values
        events: list[Event] = []
        try:
            self._gate(principal, a)
            if arm is None:
                raise self._no_arm(arm_id)
            if arm.user != a.user:
                raise CommandRejected("arm_user", f"arm {arm.id} ({arm.defn.name}) was armed by {arm.user};"
                                      " only they may execute it")
            if now_ns >= arm.expires_ns:
                events += self._disarm(arm, "expired", now_ns)
                raise CommandRejected("arm_expired", f"arm {arm.id} ({arm.defn.name}) expired"
                                      f" {(now_ns - arm.expires_ns) / 1e9:.1f} s ago (execute within"
                                      f" {self.arm_timeout_s:g} s of arming); arm it again")
            self._require_authority(principal, now_ns)
            self._rate(a.user, now_ns, consume=True)
        except CommandRejected as e:
            return events + self._reject(a, e, now_ns)
        del self._arms[arm.id]
        self._remember_arm(arm, "executed")
        return [arm.as_wire("executed")] + self._accept(a, now_ns)

    def disarm(self, principal: PrincipalLike, arm_id: int, now_ns: int) -> list[Event]:
        """Cancel an arm: its user or an admin. CommandRejected if there is no such arm or it is someone else's."""
        arm = self._arms.get(arm_id) if _is_int(arm_id) else None
        if arm is None:
            raise self._no_arm(arm_id)
        if arm.user != principal.user and principal_role(principal) != Role.ADMIN:
            raise CommandRejected("arm_user", f"arm {arm.id} belongs to {arm.user}; only they or an admin may disarm it")
        return self._disarm(arm, f"disarmed by {principal.user}", now_ns)

    # -- the uplink -----------------------------------------------------------------------------------------------
    def next_to_send(self, now_ns: int) -> Release | None:
        """Release the next queued command if none is in flight: RELEASED with its packet and uplink sequence.

        A record that cannot go (authority lost, no telemetry to verify it, encode error) comes back
        FAILED with ``packet`` None; call again for the one after it.
        """
        if self._flight is not None or not self._queue:
            return None
        job = self._queue.popleft()
        rec, defn = job.record, job.defn
        holder = self.authority.holder(now_ns)
        if holder is None or holder.user != rec.user:
            now_with = f"is now held by {holder.describe()}" if holder else "is no longer held"
            return self._fail_release(job, now_ns, "authority_lost", f"not sent: command authority {now_with}")
        if defn.echo and self._int(self.echo.count) is None:
            return self._fail_release(job, now_ns, "no_telemetry", "not sent: no downlink telemetry yet"
                                      f" ({self.echo.count} not seen), so the vehicle's echo could not be verified")
        rec.sequence = self._next_sequence
        self._next_sequence += 1
        wire_args = [(a.wire_kind, rec.values[a.name]) for a in defn.args]
        try:
            packet = bytes(self.encode(rec.sequence, defn.opcode, wire_args, rec.arm_id is not None))
        except Exception as e:  # a codec error must fail this record, not wedge the queue
            return self._fail_release(job, now_ns, "encode_failed", f"not sent: uplink encoding failed: {e}")
        job.base_count, job.base_result = self._int(self.echo.count), self._int(self.echo.result)
        job.deadline_ns = now_ns + int(defn.timeout_ack_s * 1e9)
        self._flight = job
        return Release(rec, packet, [self._move(rec, State.RELEASED, now_ns)])

    def sent(self, record_id: int, now_ns: int) -> list[Event]:
        """The released packet left: SENT, and verification starts. Ignored unless it is the one in flight."""
        job = self._flight_for(record_id, State.RELEASED)
        if job is None:
            return []
        events = [self._move(job.record, State.SENT, now_ns)]
        job.deadline_ns = now_ns + int((job.defn.timeout_ack_s if job.defn.echo else job.defn.timeout_complete_s)
                                       * 1e9)
        return events + self._verify(now_ns)

    def send_failed(self, record_id: int, reason: str, now_ns: int) -> list[Event]:
        """The released packet could not be sent: FAILED, and the next one may go."""
        job = self._flight_for(record_id, State.RELEASED)
        if job is None:
            return []
        return [self._finish(job, State.FAILED, now_ns, "send_failed", f"send failed: {reason}")]

    # -- verification and time ------------------------------------------------------------------------------------
    def observe(self, values: Mapping[str, object], now_ns: int) -> list[Event]:
        """Latest telemetry by parameter name (engineering values): moves the command in flight along."""
        for name, v in values.items():
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                self._latest[name] = f
        return self._verify(now_ns)

    def tick(self, now_ns: int) -> list[Event]:
        """Lapse the authority lease, disarm expired arms, time out the command in flight."""
        events = self.authority.expire(now_ns)
        for arm in [a for a in self._arms.values() if now_ns >= a.expires_ns]:
            events += self._disarm(arm, "expired", now_ns)
        job = self._flight
        if job is not None and now_ns >= job.deadline_ns:
            code, detail = self._timeout_reason(job)
            events.append(self._finish(job, State.TIMED_OUT, now_ns, code, detail))
        return events

    # -- state for consoles ---------------------------------------------------------------------------------------
    @property
    def in_flight(self) -> CommandRecord | None:
        return self._flight.record if self._flight else None

    @property
    def queued(self) -> list[CommandRecord]:
        return [j.record for j in self._queue]

    @property
    def arms(self) -> list[Arm]:
        return list(self._arms.values())

    def definitions_as_wire(self) -> list[dict]:
        return [d.as_wire() for d in self.definitions.values()]

    def snapshot(self, now_ns: int, history: int = 100) -> list[Event]:
        """Everything a console that just connected needs: authority, live arms, the latest records."""
        return ([self.authority.as_wire(now_ns)] + [a.as_wire("armed") for a in self._arms.values()]
                + [{"type": "command", "record": r} for r in self.history.as_wire(history)])

    # -- checks ---------------------------------------------------------------------------------------------------
    def _attempt(self, principal: PrincipalLike, name: object, args: object, reason: object,
                 client_seq: object) -> _Attempt:
        role = principal_role(principal)
        why = (reason if isinstance(reason, str) else "" if reason is None else str(reason)).strip()
        return _Attempt(principal.user, str(role) if role else str(principal.role), name, args,
                        why[:MAX_REASON_CHARS], client_seq)

    def _gate(self, principal: PrincipalLike, a: _Attempt) -> None:
        """Role, then replay protection (a number counts as used once the caller may command at all)."""
        role = principal_role(principal)
        if role is None or role < Role.DIRECTOR:
            raise CommandRejected("role", f"role {a.role} may not send commands (director or admin required)")
        seq = a.client_seq
        if seq is None:
            return
        if not _is_int(seq):
            raise CommandRejected("bad_client_seq", f"client_seq must be an integer, got {seq!r}")
        used = self._client_seqs.setdefault(a.user, set())
        if seq in used:
            raise CommandRejected("replay", f"replayed sequence number: client_seq {seq} was already used by {a.user}")
        used.add(seq)

    def _require_authority(self, principal: PrincipalLike, now_ns: int) -> None:
        try:
            self.authority.require(principal, now_ns)
        except AuthorityRefused as e:
            raise CommandRejected("authority", f"not the command authority: {e.reason}") from None

    def _resolve(self, principal: PrincipalLike, a: _Attempt, now_ns: int) -> None:
        """Authority, then the definition, then the arguments."""
        self._require_authority(principal, now_ns)
        defn = self.definitions.get(a.name) if isinstance(a.name, str) else None
        if defn is None:
            raise CommandRejected("unknown_command", f"unknown command {a.name!r} (commands: "
                                  f"{', '.join(self.definitions)})", allowed=list(self.definitions))
        a.defn = defn
        a.values = check_args(defn, a.raw_args)

    def _rate(self, user: str, now_ns: int, *, consume: bool) -> None:
        if self.rate_limit is None:
            return
        limit, per_s = self.rate_limit
        window = int(per_s * 1e9)
        times = self._accepted_ns.setdefault(user, deque())
        while times and now_ns - times[0] >= window:
            times.popleft()
        if len(times) >= limit:
            wait = (times[0] + window - now_ns) / 1e9
            raise CommandRejected("rate_limit", f"rate limit: at most {limit} commands per {per_s:g} s per user;"
                                  f" next one allowed in {wait:.1f} s", allowed={"commands": limit, "per_s": per_s})
        if consume:
            times.append(now_ns)

    def _no_arm(self, arm_id: object) -> CommandRejected:
        arm, how = self._ended_arms.get(arm_id, (None, "")) if _is_int(arm_id) else (None, "")
        if arm is None:
            return CommandRejected("arm_unknown", f"no such arm: {arm_id!r}")
        if how == "expired":
            return CommandRejected("arm_expired", f"arm {arm.id} ({arm.defn.name}) expired (execute within"
                                   f" {self.arm_timeout_s:g} s of arming); arm it again")
        if how == "executed":
            return CommandRejected("arm_used", f"arm {arm.id} ({arm.defn.name}) was already executed")
        return CommandRejected("arm_disarmed", f"arm {arm.id} ({arm.defn.name}) was {how}")

    # -- records, events, audit -----------------------------------------------------------------------------------
    def _new_record(self, a: _Attempt) -> CommandRecord:
        d, seq = a.defn, a.client_seq
        rec = CommandRecord(
            id=self._next_id, name=d.name if d else _safe_name(a.name), opcode=d.opcode if d else None,
            args=display_args(d, a.values) if d and a.values is not None else _safe_args(a.raw_args),
            user=a.user, role=a.role, reason=a.reason,
            client_seq=seq if _is_int(seq) else None,
            hazardous=d.hazardous if d else False, arm_id=a.arm_id, values=dict(a.values or {}))
        self._next_id += 1
        self.history.add(rec)
        return rec

    def _reject(self, a: _Attempt, err: CommandRejected, now_ns: int) -> list[Event]:
        rec = self._new_record(a)
        event = self._move(rec, State.REJECTED, now_ns, err.code, err.message)
        self._write_audit(now_ns, a, "rejected", rec)
        return [event]

    def _accept(self, a: _Attempt, now_ns: int) -> list[Event]:
        rec = self._new_record(a)
        event = self._move(rec, State.QUEUED, now_ns)
        self._queue.append(_Job(rec, a.defn))
        self._write_audit(now_ns, a, "accepted", rec)
        return [event]

    def _write_audit(self, now_ns: int, a: _Attempt, outcome: str, rec: CommandRecord | None = None) -> None:
        d = a.defn
        entry = {"ts": now_ns, "user": a.user, "role": a.role,
                 "command": d.name if d else _safe_name(a.name),
                 "args": display_args(d, a.values) if d and a.values is not None else _safe_args(a.raw_args),
                 "outcome": outcome, "reason": a.reason, "code": rec.code if rec else "",
                 "detail": rec.detail if rec else "", "client_seq": rec.client_seq if rec else a.client_seq,
                 "record_id": rec.id if rec else None, "arm_id": a.arm_id}
        self.audit.append(entry)
        if self._on_audit is not None:
            self._on_audit(entry)

    def _move(self, rec: CommandRecord, state: State, now_ns: int, code: str = "", detail: str = "") -> Event:
        rec.advance(state, now_ns, code=code, detail=detail)
        return {"type": "command", "record": rec.as_wire()}

    def _finish(self, job: _Job, state: State, now_ns: int, code: str = "", detail: str = "") -> Event:
        self._flight = None
        return self._move(job.record, state, now_ns, code, detail)

    def _fail_release(self, job: _Job, now_ns: int, code: str, detail: str) -> Release:
        return Release(job.record, None, [self._move(job.record, State.FAILED, now_ns, code, detail)])

    def _disarm(self, arm: Arm, how: str, now_ns: int) -> list[Event]:
        self._arms.pop(arm.id, None)
        self._remember_arm(arm, how)
        detail = f"not executed within {self.arm_timeout_s:g} s" if how == "expired" else how
        return [arm.as_wire("disarmed", detail)]

    def _remember_arm(self, arm: Arm, how: str) -> None:
        self._ended_arms[arm.id] = (arm, how)
        while len(self._ended_arms) > _ENDED_ARMS_KEPT:
            self._ended_arms.popitem(last=False)

    # -- verification ---------------------------------------------------------------------------------------------
    def _flight_for(self, record_id: int, state: State) -> _Job | None:
        job = self._flight
        return job if job is not None and job.record.id == record_id and job.record.state == state else None

    def _int(self, name: str) -> int | None:
        v = self._latest.get(name)
        return None if v is None else int(round(v))

    def _verify(self, now_ns: int) -> list[Event]:
        job = self._flight
        if job is None or job.record.state not in (State.SENT, State.ACKNOWLEDGED):
            return []
        rec, defn = job.record, job.defn
        events: list[Event] = []
        if rec.state == State.SENT and defn.echo:
            answer = self._echo(job)
            if answer is None:
                return []
            if answer[0] != "ack":
                return [self._finish(job, State.FAILED, now_ns, *answer)]
            events.append(self._move(rec, State.ACKNOWLEDGED, now_ns))
            job.deadline_ns = now_ns + int(defn.timeout_complete_s * 1e9)
        if defn.effect is None:
            detail = "" if defn.echo else "sent; nothing to verify (no echo, no effect)"
            events.append(self._finish(job, State.COMPLETED, now_ns, detail=detail))
        elif defn.effect.holds(rec.values, self._latest):
            events.append(self._finish(job, State.COMPLETED, now_ns))
        return events

    def _echo(self, job: _Job) -> tuple[str, str] | None:
        """The vehicle's answer to the packet in flight (see ``echo.read_echo``)."""
        answer, note = read_echo(self._latest, job.base_count, job.base_result, job.defn.opcode, self.count_modulus,
                                 self.echo)
        if note:
            job.note = note
        return answer

    def _timeout_reason(self, job: _Job) -> tuple[str, str]:
        rec, defn = job.record, job.defn
        if rec.state == State.RELEASED:
            return "send_timeout", f"released but not reported sent within {defn.timeout_ack_s:g} s"
        if rec.state == State.SENT and defn.echo:
            return "ack_timeout", (f"no acknowledgement within {defn.timeout_ack_s:g} s ({self.echo.count}"
                                   f" {self._int(self.echo.count)}, was {job.base_count} before sending){job.note}")
        effect = defn.effect
        param = effect.parameter(rec.values)
        seen = self._latest.get(param)
        return "effect_timeout", (f"effect not seen within {defn.timeout_complete_s:g} s: {param} ="
                                  f" {'not received' if seen is None else f'{seen:g}'},"
                                  f" expected {effect.expected(rec.values)}")
