#!/usr/bin/env python3
"""A client of a RUNNING siyu-hub, written from Protocol/SPEC.md and siyu_protocol.py only.

It starts its own hub in a temporary directory (loopback, ephemeral port), registers nodes,
then talks to it over TCP as those nodes: handshake, PUSH, PULL (CHANGES or snapshot),
PING/PONG, BYE, a cross-check between two nodes, and the refusals the spec defines, each on a
fresh connection. It prints one line per check and exits 1 if any MUST-level check failed.

    python3 tools/spec-check/live_client.py [--hub-bin DIR] [-q]

Line prefixes: PASS / FAIL (a MUST of the spec, or a direct consequence of one), WARN (a SHOULD
the hub does not follow), NOTE (the spec leaves this open; what the hub did is recorded).
Python 3.11, standard library only. Client-side guesses are marked ASSUMPTION.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import fields as dc_fields
from typing import Optional

sys.dont_write_bytecode = True   # leave no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siyu_protocol as sp  # noqa: E402

IO_TIMEOUT = 5.0        # every socket operation
CLOSE_WAIT = 3.0        # how long we wait for the hub to close after an ERROR
HUB_ID = "hub-x"
ROLE_HQ, ROLE_STORE = 0, 1
OP_NAMED = re.compile(r"^op (0|[1-9][0-9]*): ")

# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------


class Report:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.counts = {"PASS": 0, "FAIL": 0, "WARN": 0, "NOTE": 0}
        self.failures: list[str] = []
        self.section = ""

    def begin(self, title: str) -> None:
        self.section = title
        if not self.quiet:
            print(f"--- {title}")

    def _emit(self, status: str, line: str) -> None:
        self.counts[status] += 1
        text = f"{status} {line}"
        if status == "FAIL":
            self.failures.append(text)
        if status != "PASS" or not self.quiet:
            print(text, flush=True)

    def check(self, name: str, ok: bool, expected: str, got: str, should: bool = False) -> bool:
        status = "PASS" if ok else ("WARN" if should else "FAIL")
        if ok:
            self._emit(status, f"{name}: {got}")
        else:
            self._emit(status, f"{name}: expected {expected}; got {got}")
        return ok

    def note(self, name: str, text: str) -> None:
        self._emit("NOTE", f"{name}: {text}")


def describe(msg) -> str:
    if msg is None:
        return "nothing"
    if isinstance(msg, str):
        return msg
    if isinstance(msg, sp.Error):
        return f"ERROR code={msg.code} retryable={msg.retryable} message={msg.message!r}"
    if isinstance(msg, (sp.Push, sp.Changes, sp.SnapshotChunk)):
        cs = msg.change_set
        extra = ""
        if isinstance(msg, sp.Changes):
            extra = f" next_cursor={msg.next_cursor} more={msg.more}"
        if isinstance(msg, sp.SnapshotChunk):
            extra = f" snapshot_id={msg.snapshot_id} index={msg.index}"
        return f"{msg.NAME}{extra} ({len(cs.ops)} ops, schema {cs.schema_version})"
    if isinstance(msg, sp.Ignored):
        return f"ignorable frame type 0x{msg.type:02x}"
    parts = []
    for f in dc_fields(msg):
        v = getattr(msg, f.name)
        if isinstance(v, bytes):
            v = v.hex() if len(v) <= 8 else v[:8].hex() + "…"
        parts.append(f"{f.name}={v!r}" if isinstance(v, str) else f"{f.name}={v}")
    return f"{msg.NAME} " + " ".join(parts)


# --------------------------------------------------------------------------------------------
# connection
# --------------------------------------------------------------------------------------------


class Closed(Exception):
    pass


class TimedOut(Exception):
    pass


class Unexpected(Exception):
    def __init__(self, wanted: str, got):
        super().__init__(f"expected {wanted}, got {describe(got)}")
        self.got = got


class Conn:
    """One TCP connection to the hub, with both directions' string dictionaries."""

    nonces: list[bytes] = []
    frame_versions: dict[int, int] = {}     # version byte -> frames received with it
    changeset_schemas: dict[int, int] = {}  # schema_version -> change sets received with it

    def __init__(self, addr: tuple[str, int], timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.settimeout(timeout)
        self.enc = sp.StreamEncoder()
        self.frames = sp.FrameDecoder()
        self.rx_dict = sp.StringDictionary()
        self.queue: list[tuple[object, sp.Frame]] = []
        self.last_frame: Optional[sp.Frame] = None
        self.raw_in = bytearray()
        self.eof = False
        self.reset = False
        self.version = 1
        self.pings_answered = 0
        # Section 6: this connection's nonce, the handshake transcript, the session's keys.
        self.nonce = os.urandom(32)
        self.hello_payload = b""
        self.challenge_payload = b""
        self.challenge: Optional[sp.Challenge] = None
        self.tx_key: Optional[bytes] = None
        self.rx_key: Optional[bytes] = None
        self.tx_seq = 0
        self.rx_seq = 0
        self.rx_ready = False
        self.frames.tag_size = self._tag_size

    def _tag_size(self, msg_type: int) -> int:
        """Section 3: the hub's frames are sealed from WELCOME on, once we hold the keys."""
        if self.rx_key is None:
            return 0
        if msg_type == sp.Welcome.TYPE:
            self.rx_ready = True
        return sp.TAG_SIZE if self.rx_ready else 0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending
    def send(self, msg, version: Optional[int] = None) -> None:
        v = self.version if version is None else version
        if isinstance(msg, sp.Hello) and self.challenge is None:
            data = self.enc.encode(msg, v)
            self.hello_payload = data[sp.HEADER_SIZE:-sp.CHECKSUM_SIZE]
        elif v >= 2:
            # After CHALLENGE every frame is of the chosen version, HELLO and CHALLENGE too (section 4).
            data = sp.encode_frame(msg.TYPE, sp.encode_payload(msg, self.enc.dictionary), v)
        else:
            data = self.enc.encode(msg, v)
        self.send_raw(self.seal_bytes(data))

    def seal_bytes(self, data: bytes) -> bytes:
        """Seal one encoded frame with the next sequence number, if we hold the keys (section 3)."""
        if self.tx_key is None:
            return data
        plain = sp.Frame(data[2], data[3], data[sp.HEADER_SIZE:-sp.CHECKSUM_SIZE])
        sealed = sp.seal(self.tx_key, self.tx_seq, plain).encode()
        self.tx_seq += 1
        return sealed

    def send_frame(self, msg_type: int, payload: bytes, version: Optional[int] = None) -> None:
        """A raw frame of our choosing, sealed if the session is."""
        self.send_raw(self.seal_bytes(sp.encode_frame(msg_type, payload, self.version if version is None else version)))

    def proof(self, secret: str) -> bytes:
        ch = self.challenge
        keys = sp.scram_keys(secret, ch.salt, ch.iterations)
        return sp.auth_proof(keys, sp.transcript(self.hello_payload, self.challenge_payload))

    def authenticate(self, secret: str) -> None:
        """Section 6: AUTH with the proof, then the session's keys for every later frame."""
        ch = self.challenge
        keys = sp.scram_keys(secret, ch.salt, ch.iterations)
        t = sp.transcript(self.hello_payload, self.challenge_payload)
        self.send(sp.Auth(sp.auth_proof(keys, t)))
        self.tx_key, self.rx_key = sp.session_keys(keys.client_key, keys.server_key, t)

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.eof = True
            raise Closed(f"send failed: {e.__class__.__name__}") from None
        except socket.timeout:
            raise TimedOut("send timed out") from None

    # -- receiving
    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimedOut(f"no frame within the timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimedOut("no frame within the timeout") from None
        except ConnectionResetError:
            self.eof = self.reset = True
            raise Closed("connection reset by the hub") from None
        if not data:
            self.eof = True
            if self.frames.buffered:
                raise Closed(f"hub closed inside a frame ({self.frames.buffered} bytes buffered)")
            raise Closed("hub closed the connection")
        self.raw_in += data
        for f in self.frames.feed(data):   # a framing error from the hub propagates (SiyuError)
            if f.tag:
                if f.tag != sp.frame_tag(self.rx_key, self.rx_seq, f):
                    raise sp.SiyuError(f"the MAC of the hub's sealed frame {self.rx_seq} (type 0x{f.type:02x}) does not verify")
                self.rx_seq += 1
            msg = sp.decode_message(f, self.rx_dict)
            if isinstance(msg, sp.Challenge) and self.challenge is None:
                self.challenge, self.challenge_payload, self.version = msg, f.payload, msg.version
            Conn.frame_versions[f.version] = Conn.frame_versions.get(f.version, 0) + 1
            cs = getattr(msg, "change_set", None)
            if cs is not None:
                Conn.changeset_schemas[cs.schema_version] = Conn.changeset_schemas.get(cs.schema_version, 0) + 1
            self.queue.append((msg, f))

    def recv(self, timeout: float = IO_TIMEOUT, answer_pings: bool = True):
        deadline = time.monotonic() + timeout
        while True:
            while not self.queue:
                if self.eof:
                    raise Closed("hub closed the connection")
                self._fill(deadline)
            msg, frame = self.queue.pop(0)
            self.last_frame = frame
            if answer_pings and isinstance(msg, sp.Ping):
                # Section 7: either side MAY PING in ready; the receiver MUST answer PONG.
                self.send(sp.Pong(msg.token))
                self.pings_answered += 1
                continue
            return msg

    def expect(self, cls, timeout: float = IO_TIMEOUT):
        try:
            m = self.recv(timeout)
        except (Closed, TimedOut) as e:
            raise Unexpected(cls.NAME, str(e)) from None
        if not isinstance(m, cls):
            raise Unexpected(cls.NAME, m)
        return m

    def wait_closed(self, timeout: float = CLOSE_WAIT) -> tuple[bool, list]:
        """Read until EOF. Returns (closed, messages received meanwhile)."""
        extra = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                extra.append(self.recv(max(0.0, deadline - time.monotonic()), answer_pings=False))
            except Closed:
                return True, extra
            except TimedOut:
                return False, extra
            except sp.SiyuError as e:
                extra.append(f"undecodable bytes from the hub: {e}")
                return False, extra

    # -- session
    def hello(self, node: str, role: int, versions: bytes = b"\x02", schema: int = 1) -> sp.Challenge:
        self.send(sp.Hello(node, role, versions, schema, self.nonce))
        ch = self.expect(sp.Challenge)
        Conn.nonces.append(ch.nonce)
        self.challenge_frame = self.last_frame
        return ch

    def handshake(self, node: str, secret: str, role: int, schema: int = 1) -> sp.Welcome:
        self.hello(node, role, b"\x02", schema)
        self.authenticate(secret)
        return self.expect(sp.Welcome)

    def ping(self, token: int) -> bool:
        self.send(sp.Ping(token))
        m = self.recv(answer_pings=False)
        return isinstance(m, sp.Pong) and m.token == token


# --------------------------------------------------------------------------------------------
# ops
# --------------------------------------------------------------------------------------------


class Clock:
    """A node's hybrid logical clock, near the wall clock."""

    def __init__(self):
        self.ms = 0
        self.logical = 0

    def tick(self, ahead_ms: int = 0) -> int:
        now = int(time.time() * 1000) + ahead_ms
        if now > self.ms:
            self.ms, self.logical = now, 0
        else:
            self.logical += 1
        return sp.hlc(self.ms, self.logical)


class Node:
    """A node's identity and its own numbered ops (the outbox is ours to manage here)."""

    def __init__(self, node_id: str, role: int, secret: str, author: str = "wm_lin"):
        self.id = node_id
        self.role = role
        self.secret = secret
        self.author = author    # the staff member its ops name by default (§7 "Write rights": a store's own staff)
        self.clock = Clock()
        self.seq = 0
        self.acked = 0

    def op(self, kind: int, body, author: Optional[str] = None, stamps=(), seq: Optional[int] = None,
           ahead_ms: int = 0, origin: Optional[str] = None, role: Optional[int] = None) -> sp.Op:
        if author is None:
            author = self.author
        if seq is None:
            self.seq += 1
            seq = self.seq
        return sp.Op(kind, self.id if origin is None else origin, self.role if role is None else role,
                     seq, self.clock.tick(ahead_ms), author, body, tuple(stamps))

    def write(self, entity: str, rid: str, field: str, value: sp.Value, sub=None, **kw) -> sp.Op:
        return self.op(sp.OP_WRITE, sp.WriteBody(sp.ENTITY_BY_NAME[entity], rid, sub, field, value), **kw)

    def connect(self, addr) -> tuple[Conn, sp.Welcome]:
        c = Conn(addr)
        w = c.handshake(self.id, self.secret, self.role)
        return c, w


def stamp(op: sp.Op) -> sp.Stamp:
    return sp.op_stamp(op)


def op_key(op: sp.Op) -> tuple[str, int]:
    return (op.origin, op.seq)


def op_diff(a: sp.Op, b: sp.Op) -> str:
    diffs = []
    for f in dc_fields(sp.Op):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            diffs.append(f"{f.name}: pushed {x!r}, received {y!r}")
    return "; ".join(diffs) or "equal"


# --------------------------------------------------------------------------------------------
# hub process
# --------------------------------------------------------------------------------------------


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def build(repo: str) -> str:
    for product in ("siyu-hub", "siyu"):
        print(f"building {product} (swift build --product {product} --scratch-path .build) …", flush=True)
        r = run(["swift", "build", "--product", product, "--scratch-path", ".build"], cwd=repo)
        if r.returncode != 0:
            sys.exit(f"swift build --product {product} failed:\n{r.stdout}\n{r.stderr}")
    r = run(["swift", "build", "--show-bin-path", "--scratch-path", ".build"], cwd=repo)
    return r.stdout.strip()


class Hub:
    def __init__(self, bin_dir: str, tmp: str):
        self.exe = os.path.join(bin_dir, "siyu-hub")
        if not os.access(self.exe, os.X_OK):
            sys.exit(f"no executable siyu-hub in {bin_dir}")
        self.tmp = tmp
        self.db = os.path.join(tmp, "hub.db")
        self.proc: Optional[subprocess.Popen] = None
        self.addr: Optional[tuple[str, int]] = None
        self.log_path = os.path.join(tmp, "hub.log")
        self.log = None

    def init(self) -> None:
        r = run([self.exe, "init", "--db", self.db, "--id", HUB_ID])
        if r.returncode != 0:
            sys.exit(f"siyu-hub init failed: {r.stderr}")

    def add_node(self, node: str, role: int, store: Optional[str] = None) -> str:
        cmd = [self.exe, "add-node", "--db", self.db, node, "--role", "hq" if role == ROLE_HQ else "store"]
        if store:
            cmd += ["--store", store, "--new-store"]
        r = run(cmd)
        if r.returncode != 0:
            sys.exit(f"siyu-hub add-node {node} failed: {r.stderr}")
        return r.stdout.strip()

    def serve(self, *extra: str) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.exe, "serve", "--db", self.db, "--listen", "127.0.0.1:0", *extra],
                                     stdout=subprocess.PIPE, stderr=self.log)
        line = b""
        deadline = time.monotonic() + 30
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                sys.exit(f"siyu-hub serve did not say where it listens (got {line!r}); log: {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                b = os.read(self.proc.stdout.fileno(), 1)
                if not b:
                    continue
                line += b
        m = re.fullmatch(r"listening on (127\.0\.0\.1):(\d+)", line.decode().strip())
        if not m:
            self.kill()
            sys.exit(f"unexpected first line from siyu-hub serve: {line!r}")
        self.addr = (m.group(1), int(m.group(2)))

    def stop(self) -> Optional[int]:
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.proc.stdout.close()
        self.proc = None
        self.log.close()
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# pulling
# --------------------------------------------------------------------------------------------


class PullResult:
    def __init__(self):
        self.change_ops: list[sp.Op] = []
        self.snapshot_ops: list[sp.Op] = []
        self.snapshots: list[tuple[int, int, int, int]] = []   # (id, cursor, reason, chunks)
        self.rounds = 0
        self.cursor = 0
        self.error: Optional[str] = None

    @property
    def ops(self) -> list[sp.Op]:
        return self.snapshot_ops + self.change_ops


def pull_all(rep: Report, name: str, conn: Conn, cursor: int, budget: int, max_rounds: int = 500) -> PullResult:
    """PULL from ``cursor`` while ``more`` (section 7, Download), taking CHANGES or a whole
    snapshot as the answer, and check each answer against the spec."""
    res = PullResult()
    ok_budget = ok_cursor = ok_snapshot = True
    detail = []
    while res.rounds < max_rounds:
        res.rounds += 1
        conn.send(sp.Pull(cursor, budget))
        try:
            m = conn.recv()
        except (Closed, TimedOut) as e:
            res.error = str(e)
            break
        if isinstance(m, sp.Changes):
            payload = len(conn.last_frame.payload)
            limit = min(budget, sp.MAX_PAYLOAD) if budget else sp.MAX_PAYLOAD
            if payload > limit and len(m.change_set.ops) > 1:
                ok_budget = False
                detail.append(f"CHANGES of {payload} payload bytes with {len(m.change_set.ops)} ops for budget {budget}")
            if m.next_cursor < cursor:
                ok_cursor = False
                detail.append(f"next_cursor {m.next_cursor} < cursor {cursor}")
            if m.more and not m.change_set.ops and m.next_cursor == cursor:
                ok_cursor = False
                detail.append(f"more=true without progress at cursor {cursor}")
            res.change_ops += m.change_set.ops
            cursor = m.next_cursor
            if not m.more:
                break
        elif isinstance(m, sp.SnapshotBegin):
            sid, index, sops = m.snapshot_id, 0, []
            begin = m
            while True:
                try:
                    c = conn.recv()
                except (Closed, TimedOut) as e:
                    ok_snapshot = False
                    detail.append(f"snapshot {sid}: {e}")
                    res.error = str(e)
                    break
                if isinstance(c, sp.SnapshotChunk):
                    if c.snapshot_id != sid or c.index != index:
                        ok_snapshot = False
                        detail.append(f"chunk (id {c.snapshot_id}, index {c.index}) where (id {sid}, index {index}) was due")
                    index += 1
                    sops += c.change_set.ops
                elif isinstance(c, sp.SnapshotEnd):
                    if c.snapshot_id != sid or c.chunk_count != index:
                        ok_snapshot = False
                        detail.append(f"SNAPSHOT_END id {c.snapshot_id} chunk_count {c.chunk_count} after {index} chunks of snapshot {sid}")
                    break
                else:
                    ok_snapshot = False
                    detail.append(f"inside snapshot {sid}: {describe(c)}")
                    break
            res.snapshots.append((sid, begin.cursor, begin.reason, index))
            res.snapshot_ops += sops
            cursor = begin.cursor       # section 7: continue pulling from the snapshot's cursor
            if res.error:
                break
        else:
            res.error = describe(m)
            break
    res.cursor = cursor
    rep.check(f"{name}: every answer to PULL is CHANGES or a whole snapshot", res.error is None,
              "CHANGES / SNAPSHOT_BEGIN…END until more=false", res.error or f"{res.rounds} PULL(s)")
    rep.check(f"{name}: CHANGES respect byte_budget {budget} (one op may exceed it)", ok_budget,
              "payload ≤ budget unless a single op", "; ".join(detail) or "all within budget")
    rep.check(f"{name}: next_cursor never goes back and `more` makes progress", ok_cursor,
              "next_cursor ≥ cursor", "; ".join(detail) or "ok")
    if res.snapshots:
        rep.check(f"{name}: snapshot chunks numbered 0… in order, END counts them", ok_snapshot,
                  "ids equal, indexes 0..n-1, chunk_count = n", "; ".join(detail) or
                  ", ".join(f"snapshot {s[0]} reason {s[2]} cursor {s[1]} {s[3]} chunk(s)" for s in res.snapshots))
    return res


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


class Suite:
    def __init__(self, rep: Report, hub: Hub, nodes: dict[str, Node]):
        self.rep = rep
        self.hub = hub
        self.nodes = nodes
        self.accepted: dict[tuple[str, int], sp.Op] = {}    # every op the hub acknowledged
        self.refused: set[tuple[str, int]] = set()
        self.push_order: list[tuple[str, int]] = []

    @property
    def addr(self):
        return self.hub.addr

    # -- helpers
    def expect_error(self, name: str, conn: Conn, code: int, retryable: bool, close: bool,
                     names_op: Optional[int] = None, names_no_op: bool = False, first=None) -> Optional[sp.Error]:
        rep = self.rep
        try:
            m = first if first is not None else conn.recv()
        except (Closed, TimedOut, sp.SiyuError) as e:
            rep.check(f"{name}: ERROR {code}", False, f"ERROR code={code} retryable={retryable}", str(e))
            return None
        ok = isinstance(m, sp.Error) and m.code == code
        rep.check(f"{name}: ERROR code {code}", ok, f"ERROR code={code}", describe(m))
        if not isinstance(m, sp.Error):
            conn.close()
            return None
        rep.check(f"{name}: retryable={retryable}", m.retryable == retryable, f"retryable={retryable}",
                  f"retryable={m.retryable}")
        if names_op is not None:
            mm = OP_NAMED.match(m.message)
            rep.check(f"{name}: the ERROR names the op (`op {names_op}: …`)", bool(mm) and mm.group(1) == str(names_op),
                      f"message starting 'op {names_op}: '", repr(m.message))
        if names_no_op:
            rep.check(f"{name}: the ERROR names no op", not OP_NAMED.match(m.message),
                      "a message not starting 'op N: '", repr(m.message))
        if close:
            closed, extra = conn.wait_closed()
            rep.check(f"{name}: the hub closes after the ERROR", closed and not extra,
                      "EOF and nothing else", ("EOF" if closed else "still open") +
                      (f" after {[describe(x) for x in extra]}" if extra else ""))
        else:
            try:
                ok = conn.ping(7007)
                got = "PING answered with PONG"
            except (Closed, TimedOut, sp.SiyuError) as e:
                ok, got = False, str(e)
            rep.check(f"{name}: the connection stays open", ok, "PONG to a PING", got)
        return m

    def still_serving(self, name: str) -> None:
        hq = self.nodes["hq"]
        try:
            c, w = hq.connect(self.addr)
            with c:
                ok = c.ping(42)
                c.send(sp.Bye("check done"))
            got = f"handshake, PING/PONG ok (log_head {w.log_head})" if ok else "no PONG"
        except Exception as e:   # noqa: BLE001 - anything here is a failure to report
            ok, got = False, f"{e.__class__.__name__}: {e}"
        self.rep.check(f"{name}: the hub still serves another node", ok, "handshake + PONG", got)

    def push(self, conn: Conn, node: Node, ops: list[sp.Op], schema: int = 1):
        conn.send(sp.Push(sp.ChangeSet(schema, ops)))
        return conn.recv()

    def push_expect_ack(self, name: str, conn: Conn, node: Node, ops: list[sp.Op], acked: int) -> bool:
        try:
            m = self.push(conn, node, ops)
        except (Closed, TimedOut, sp.SiyuError) as e:
            m = str(e)
        ok = isinstance(m, sp.PushAck) and m.acked_seq == acked
        self.rep.check(name, ok, f"PUSH_ACK acked_seq={acked}", describe(m))
        if isinstance(m, sp.PushAck):
            node.acked = m.acked_seq
            for op in ops:
                if op_key(op) not in self.accepted:
                    self.accepted[op_key(op)] = op
                    self.push_order.append(op_key(op))
        return ok

    def fresh(self, node: Node) -> Conn:
        c, w = node.connect(self.addr)
        c.welcome = w
        return c

    # ---------------------------------------------------------------------------------------
    def setup_staff(self) -> None:
        """§7 "Write rights": a store's ops name its own staff and write inside its scope, both decided
        by HQ's staff rows (staff.store_id). An HQ node of its own (not in `nodes`) writes them first."""
        rep, h = self.rep, self.setup
        rep.begin("setup: HQ assigns staff to stores (§7 Write rights: author, scope)")
        c, w = h.connect(self.addr)
        with c:
            ops = [h.write("staff", uid, "store_id", sp.Value.text(store), author="")
                   for uid, store in (("wm_lin", "sa"), ("wm_zhou", "sa"), ("wm_sb", "sb"), ("wm_sn", "sn"))]
            self.push_expect_ack("setup PUSH of staff rows → PUSH_ACK", c, h, ops, len(ops))
            c.send(sp.Bye("done"))

    def handshake_and_push(self) -> None:
        rep, a, hq = self.rep, self.nodes["sa"], self.nodes["hq"]
        rep.begin("handshake, PUSH, PING/PONG, BYE as store node sa")
        c = Conn(self.addr)
        with c:
            ch = c.hello(a.id, a.role, b"\x02", 1)
            f = c.challenge_frame
            rep.check("CHALLENGE is a version 1 frame naming version 2, the hub id, a 16-byte salt and 4096 iterations",
                      f.version == 1 and ch.version == 2 and ch.hub_id == HUB_ID and len(ch.salt) == 16 and ch.iterations == 4096,
                      f"frame v1, version 2, hub_id {HUB_ID!r}, salt 16 bytes, 4096 iterations", f"frame v{f.version}, {describe(ch)}")
            c.authenticate(a.secret)
            w = c.expect(sp.Welcome)
            setup = len(self.accepted)
            rep.check("WELCOME for a new node", w.acked_seq == 0 and w.log_head == setup and w.schema_version >= 1,
                      f"acked_seq 0, log_head {setup} (the setup's staff rows), schema_version ≥ 1", describe(w))
            self.hub_schema = w.schema_version

            # PUSH 1: customer writes (text, int), a follow relation (sub id), tag add/remove, points
            o = []
            o.append(a.write("customer", "c-sa-1", "name", sp.Value.text("林小文")))
            o.append(a.write("customer", "c-sa-1", "owner_store", sp.Value.text("sa")))
            o.append(a.write("customer", "c-sa-1", "gender", sp.Value.integer(2)))
            o.append(a.write("customer", "c-sa-1", "phone", sp.Value.text("13800138000")))
            o.append(a.write("follow_relation", "c-sa-1", "remark", sp.Value.text("老客户\n常来"), sub="wm_lin"))
            o.append(a.write("follow_relation", "c-sa-1", "createtime", sp.Value.integer(int(time.time())), sub="wm_lin"))
            o.append(a.op(sp.OP_ADD_TAG, sp.PairBody("c-sa-1", "et_gold")))
            o.append(a.op(sp.OP_ADD_TAG, sp.PairBody("c-sa-1", "et_silver"), author="wm_zhou"))
            o.append(a.op(sp.OP_REMOVE_TAG, sp.PairBody("c-sa-1", "et_silver"), stamps=[stamp(o[-1])]))
            o.append(a.op(sp.OP_POINTS, sp.PointsBody("c-sa-1", 120), author=""))
            self.push_expect_ack("PUSH of 10 ops (writes, tag add/remove, points) → PUSH_ACK", c, a, o, 10)
            self.batch1 = o
            # PUSH 2 on the same connection: builds on the dictionary of PUSH 1 (section 7)
            p = []
            other = sp.Stamp(o[0].clock - (5000 << 16) + 3, "hq")   # a stamp whose node is written as an index
            p.append(a.write("customer", "c-sa-1", "name", sp.Value.text("林小雯"), stamps=[stamp(o[0]), other]))
            p.append(a.write("customer", "c-sa-1", "unionid", sp.Value.null()))
            p.append(a.write("order", "o-sa-1", "customer_id", sp.Value.text("c-sa-1")))
            p.append(a.write("order", "o-sa-1", "store_id", sp.Value.text("sa")))
            p.append(a.op(sp.OP_ADD_LINE, sp.PairBody("o-sa-1", "l1")))
            p.append(a.write("order_line", "o-sa-1", "qty", sp.Value.integer(3), sub="l1"))
            p.append(a.op(sp.OP_STATUS, sp.StatusBody("o-sa-1", 0, 1)))
            p.append(a.write("group_chat", "g-sa-1", "owner", sp.Value.text("wm_lin")))   # sa's staff: the group is sa's
            p.append(a.op(sp.OP_ADD_MEMBER, sp.PairBody("g-sa-1", "c-sa-1")))
            p.append(a.write("group_member", "g-sa-1", "member_type", sp.Value.integer(2), sub="c-sa-1"))
            p.append(a.op(sp.OP_ACKNOWLEDGE, sp.AcknowledgeBody(5, "c-sa-1", "cf-1")))
            # a store creates a customer by naming itself its owner in the same PUSH (§7 Write rights)
            p.append(a.write("customer", "c-sa-2", "owner_store", sp.Value.text("sa")))
            p.append(a.write("customer", "c-sa-2", "name", sp.Value.text("周子豪")))
            before = len(c.enc.dictionary)
            self.push_expect_ack(f"second PUSH (13 ops, string_base {before}: builds on the dictionary) → PUSH_ACK",
                                 c, a, p, 23)
            self.batch2 = p
            # an empty PUSH (vector push-empty) changes nothing
            self.push_expect_ack("empty PUSH → PUSH_ACK with the same acked_seq", c, a, [], 23)
            # re-pushing held ops (same content) is harmless
            self.push_expect_ack("PUSH of ops already held, identical → skipped, PUSH_ACK", c, a, p[:3], 23)
            # PING / PONG, the largest token
            tok = (1 << 64) - 1
            c.send(sp.Ping(tok))
            m = c.recv(answer_pings=False)
            rep.check("PING with token 2^64-1 → PONG with the same token", isinstance(m, sp.Pong) and m.token == tok,
                      f"PONG token={tok}", describe(m))
            # a later-version field appended to PING is ignored (section 4)
            c.send_frame(sp.Ping.TYPE, sp.encode_varint(5) + b"\x01\x02\x03")
            m = c.recv(answer_pings=False)
            rep.check("PING with trailing bytes (a later version's field) → PONG", isinstance(m, sp.Pong) and m.token == 5,
                      "PONG token=5", describe(m))
            # requests are answered in order: PUSH, PULL, PING pipelined
            c.send(sp.Push(sp.ChangeSet(1, [])))
            c.send(sp.Pull(0, 64))
            c.send(sp.Ping(77))
            got = []
            for _ in range(3):
                try:
                    got.append(c.recv(answer_pings=False))
                except (Closed, TimedOut) as e:
                    got.append(str(e))
                    break
                if isinstance(got[-1], sp.SnapshotBegin):
                    while not isinstance(got[-1], (sp.SnapshotEnd, str)):
                        try:
                            got.append(c.recv(answer_pings=False))
                        except (Closed, TimedOut) as e:
                            got.append(str(e))
                    got = [x for x in got if not isinstance(x, (sp.SnapshotChunk, sp.SnapshotEnd))]
            names = [x.NAME if not isinstance(x, str) else x for x in got]
            ok = (len(got) == 3 and isinstance(got[0], sp.PushAck) and isinstance(got[1], (sp.Changes, sp.SnapshotBegin))
                  and isinstance(got[2], sp.Pong) and got[2].token == 77)
            rep.check("PUSH, PULL, PING sent back to back are answered in order", ok,
                      "PUSH_ACK, CHANGES (or snapshot), PONG 77", ", ".join(names))
            # unsolicited PONG is allowed in ready; then BYE
            c.send(sp.Pong(99))
            rep.check("an unsolicited PONG in ready is accepted", c.ping(8), "PONG to the next PING", "ok")
            c.send(sp.Bye("done"))
            closed, extra = c.wait_closed()
            rep.check("after the node's BYE the hub closes", closed, "EOF (a BYE back is allowed)",
                      ("EOF" if closed else "still open") + (f", after {[describe(x) for x in extra]}" if extra else ""))
            if extra:
                rep.note("hub's answer to BYE", ", ".join(describe(x) for x in extra))

        # reconnect: WELCOME carries acked_seq and the log head
        c, w = a.connect(self.addr)
        with c:
            rep.check("WELCOME on reconnect: acked_seq = last PUSH_ACK, log_head = ops stored",
                      w.acked_seq == 23 and w.log_head == len(self.accepted),
                      f"acked_seq 23, log_head {len(self.accepted)}", describe(w))
            c.send(sp.Bye("done"))

        # HQ pushes the tag library and HQ-only ops (bool values, a redeem, a tag deletion)
        c, w = hq.connect(self.addr)
        with c:
            h = []
            h.append(hq.write("tag_group", "tg-level", "name", sp.Value.text("会员等级"), author="admin"))
            h.append(hq.write("tag_group", "tg-level", "exclusive", sp.Value.boolean(True), author="admin"))
            h.append(hq.write("tag", "et_gold", "group_id", sp.Value.text("tg-level"), author="admin"))
            h.append(hq.write("tag", "et_gold", "name", sp.Value.text("金卡"), author="admin"))
            h.append(hq.write("tag", "et_silver", "deleted", sp.Value.boolean(False), author="admin"))
            h.append(hq.write("tag", "et_old", "name", sp.Value.text("旧标签"), author="admin"))
            h.append(hq.op(sp.OP_TAG_DELETION, sp.TagDeletionBody(4, "et_old"), author="admin",
                           stamps=[stamp(h[-1])]))
            h.append(hq.op(sp.OP_POINTS, sp.PointsBody("c-sa-1", -20), author="admin"))
            h.append(hq.write("store", "sa", "name", sp.Value.text("西湖店"), author=""))
            # deleting a customer is HQ's (§7 Write rights); the stamp names sa's write (an inline stamp)
            h.append(hq.op(sp.OP_DELETE_CUSTOMER, sp.DeleteCustomerBody("c-sa-2"), author="admin",
                           stamps=[stamp(self.batch2[-1])]))
            self.push_expect_ack("HQ PUSH of 10 ops (tag library, booleans, a redeem, a tag deletion, a customer "
                                 "deletion) → PUSH_ACK", c, hq, h, 10)
            self.hq_ops = h
            c.send(sp.Bye("done"))

    # ---------------------------------------------------------------------------------------
    def cross_check(self) -> None:
        rep, a, hq, b = self.rep, self.nodes["sa"], self.nodes["hq"], self.nodes["sb"]
        rep.begin("cross-check: what other nodes pull")
        c, w = hq.connect(self.addr)
        with c:
            res = pull_all(rep, "HQ pulls from cursor 0, budget 200", c, 0, 200)
            path = (f"{len(res.snapshots)} snapshot(s) {res.snapshots}, " if res.snapshots else "") + \
                f"{res.rounds} PULL(s), {len(res.change_ops)} ops in CHANGES"
            rep.note("HQ's first pull took", path)
            got = {op_key(o): o for o in res.ops}
            mine = self.batch1 + self.batch2
            missing = [k for k in (op_key(o) for o in mine) if k not in got]
            rep.check("HQ receives every op of sa", not missing, f"{len(mine)} ops of sa",
                      f"missing {missing}" if missing else f"all {len(mine)}")
            bad = [f"{o.origin}#{o.seq}: {op_diff(o, got[op_key(o)])}" for o in mine
                   if op_key(o) in got and got[op_key(o)] != o]
            rep.check("sa's ops arrive at HQ equal field by field (kind, origin, role, seq, clock, author, body, stamps)",
                      not bad, "identical ops", "; ".join(bad) or "identical")
            order = [op_key(o) for o in res.change_ops if o.origin == "sa"]
            rep.check("sa's ops come in log order (the order of its PUSHes)", order == sorted(order, key=lambda k: k[1])
                      or bool(res.snapshots), "seq 1..23 in order", str([k[1] for k in order]))
            own = [op_key(o) for o in res.ops if o.origin == hq.id]
            rep.note("does HQ get its own ops back (spec: 'the ops in the node's scope'; it does not exclude them)",
                     f"{len(own)} of its {len(self.hq_ops)} ops came back")
            dup = len(res.change_ops) - len({op_key(o) for o in res.change_ops})
            rep.check("no op delivered twice in one pass of CHANGES", dup == 0, "0 duplicates", f"{dup}")
            # drained: the next PULL is an empty CHANGES, more=false (no long-poll)
            c.send(sp.Pull(res.cursor, 0))
            t0 = time.monotonic()
            m = c.recv()
            dt = time.monotonic() - t0
            ok = isinstance(m, sp.Changes) and not m.change_set.ops and not m.more and m.next_cursor >= res.cursor
            rep.check("PULL at the end of the log → empty CHANGES, more=false, at once", ok and dt < 2.0,
                      "CHANGES 0 ops more=false within 2 s", f"{describe(m)} after {dt:.2f} s")
            rep.check("the cursor at the end of the log equals WELCOME's log_head", res.cursor == w.log_head,
                      f"{w.log_head}", f"{res.cursor}", should=True)
            self.hq_cursor = res.cursor
            res2 = pull_all(rep, "HQ pulls from cursor 0 with byte_budget 2^40 (treated as 1 MiB)", c, 0, 1 << 40)
            rep.check("a budget over 1 MiB gets everything in one CHANGES here", res2.rounds == 1 and
                      {op_key(o) for o in res2.ops} == {op_key(o) for o in res.ops}, "1 PULL, the same ops",
                      f"{res2.rounds} PULL(s), {len(res2.ops)} ops")
            c.send(sp.Bye("done"))

        # node sa pulls: does a node receive its own ops back?
        c, w = a.connect(self.addr)
        with c:
            res = pull_all(rep, "sa pulls from cursor 0, budget 0 (hub's choice)", c, 0, 0)
            own = [o for o in res.ops if o.origin == a.id]
            rep.note("does a node receive its own ops back (spec is silent; 'ops in the node's scope')",
                     f"sa got {len(own)} of its own {len(self.batch1) + len(self.batch2)} ops back; "
                     f"HQ ops received: {sum(1 for o in res.ops if o.origin == hq.id)} of {len(self.hq_ops)}")
            lib = [o for o in self.hq_ops if o.kind == sp.OP_TAG_DELETION or
                   (o.kind == sp.OP_WRITE and o.body.entity in (5, 6))]
            gotk = {op_key(o) for o in res.ops}
            miss = [f"hq#{o.seq}" for o in lib if op_key(o) not in gotk]
            rep.check("store sa receives HQ's tag library ops (section 7 Scope: 'plus the tag library')", not miss,
                      f"{len(lib)} tag-library ops", f"missing {miss}" if miss else "all")
            on_sa = [o for o in self.hq_ops if o.kind in (sp.OP_POINTS, sp.OP_DELETE_CUSTOMER)]
            miss = [f"hq#{o.seq}" for o in on_sa if op_key(o) not in gotk]
            rep.check("store sa receives HQ's ops on its customers (a redeem, a deletion: §7 Scope)", not miss,
                      f"{len(on_sa)} ops", f"missing {miss}" if miss else "all")
            c.send(sp.Bye("done"))

        # store sb: tag library yes; sa's customers? (scope by owner_store is a guess)
        c, w = b.connect(self.addr)
        with c:
            res = pull_all(rep, "sb pulls from cursor 0, budget 1 (at least one op per CHANGES)", c, 0, 1)
            gotk = {op_key(o): o for o in res.ops}
            miss = [f"hq#{o.seq}" for o in lib if op_key(o) not in gotk]
            rep.check("store sb receives HQ's tag library ops", not miss, f"{len(lib)} tag-library ops",
                      f"missing {miss}" if miss else "all")
            bad = [f"{op_key(o)}: {op_diff(o, gotk[op_key(o)])}" for o in lib if op_key(o) in gotk and gotk[op_key(o)] != o]
            rep.check("HQ's ops arrive at sb equal field by field", not bad, "identical", "; ".join(bad) or "identical")
            sa_ops = [o for o in res.ops if o.origin == a.id]
            # §7 Scope: sa's customers (owner_store sa), order (store_id sa) and group (owner wm_lin,
            # staff of sa) are at home in sa: sb receives none of their ops, whoever made them.
            hq_on_sa = [f"{o.origin}#{o.seq}" for o in res.ops if o.kind in (sp.OP_POINTS, sp.OP_DELETE_CUSTOMER)
                        and o.body.customer_id.startswith("c-sa-")]
            rep.check("store sb receives no op of store sa's customers, orders and groups (§7 Scope)",
                      not sa_ops and not hq_on_sa, "none",
                      f"{len(sa_ops)} of sa's ops, HQ's {hq_on_sa}")
            rep.check("sb's PULLs end at the log head (nothing more of its scope, §7 Scope)",
                      res.cursor == w.log_head, str(w.log_head), str(res.cursor))
            c.send(sp.Bye("done"))

    # ---------------------------------------------------------------------------------------
    def pushes_refused(self) -> None:
        rep, n = self.rep, self.nodes["ns"]
        rep.begin("PUSH sequencing and refused ops (store node ns)")
        c = self.fresh(n)
        with c:
            first = n.write("customer", "c-sn-1", "owner_store", sp.Value.text("sn"))
            self.push_expect_ack("ns PUSH seq 1 → PUSH_ACK 1", c, n, [first], 1)
            # a gap: seq 3 alone; acked_seq stays below the gap
            o2 = n.write("customer", "c-sn-1", "name", sp.Value.text("两"), seq=2)
            o3 = n.write("customer", "c-sn-1", "phone", sp.Value.text("139"), seq=3)
            n.seq = 3
            self.push_expect_ack("PUSH with a gap (seq 3 after acked 1) → stored, PUSH_ACK stays 1", c, n, [o3], 1)
            self.push_expect_ack("PUSH filling the gap (seq 2) → PUSH_ACK 3", c, n, [o2], 3)
            # out of order within one PUSH
            o5 = n.write("customer", "c-sn-1", "gender", sp.Value.integer(1), seq=5)
            o4 = n.write("customer", "c-sn-1", "unionid", sp.Value.text("u-4"), seq=4)
            n.seq = 5
            self.push_expect_ack("PUSH with seqs out of order (5, 4) → PUSH_ACK 5", c, n, [o5, o4], 5)
            head_before = None
            # duplicate with other content → 8 naming the op, open
            alt = n.write("customer", "c-sn-1", "gender", sp.Value.integer(2), seq=5)
            m = self.push(c, n, [alt])
            self.expect_error("held number 5 pushed with other content", c, 8, False, close=False,
                              names_op=5, first=m)
        c = self.fresh(n)
        with c:
            rep.check("WELCOME after the refusal still says acked_seq 5", c.welcome.acked_seq == 5, "5",
                      str(c.welcome.acked_seq))
            # data rule: text over its limit (name: text ≤ 64) → 14 naming the op, open
            bad = n.write("customer", "c-sn-1", "name", sp.Value.text("名" * 65))
            m = self.push(c, n, [bad])
            self.expect_error(f"op {bad.seq}: customer name of 65 scalar values (§9 text ≤ 64)", c, 14, False,
                              close=False, names_op=bad.seq, first=m)
            self.refused.add(op_key(bad))
            c.send(sp.Bye("reconnecting"))
        # a node that missed the ERROR pushes the op again and is refused again (section 7)
        c = self.fresh(n)
        with c:
            rep.check(f"WELCOME before the refusal of {bad.seq} is settled: acked_seq stays {bad.seq - 1}",
                      c.welcome.acked_seq == bad.seq - 1, str(bad.seq - 1), str(c.welcome.acked_seq))
            m = self.push(c, n, [bad])
            self.expect_error(f"op {bad.seq} pushed again on a new connection", c, 14, False, close=False,
                              names_op=bad.seq, first=m)
            # the same connection goes on: its dictionary took the refused PUSH's strings (section 7)
            ok_op = n.write("customer", "c-sn-1", "name", sp.Value.text("名" * 64))
            self.push_expect_ack(f"next PUSH without seq {bad.seq} but with {ok_op.seq} settles it → PUSH_ACK {ok_op.seq}",
                                 c, n, [ok_op], ok_op.seq)
            # one bad op stops the whole PUSH: the valid op before it is not stored (section 7 step 2)
            v1 = n.write("customer", "c-sn-1", "phone", sp.Value.text("13911112222"))
            b1 = n.write("customer", "c-sn-1", "gender", sp.Value.integer(-1))
            b2 = n.write("customer", "c-sn-1", "gender", sp.Value.integer(9))
            m = self.push(c, n, [v1, b1, b2])
            self.expect_error(f"PUSH [{v1.seq} valid, {b1.seq} bad, {b2.seq} bad] names the first bad op", c, 14, False,
                              close=False, names_op=b1.seq, first=m)
            self.refused.add(op_key(b1))
            # b2 was never judged: the hub stopped at b1. ASSUMPTION: the node (having quarantined
            # b1) pushes v1 and b2 again; b2 is then refused on its own.
            m = self.push(c, n, [v1, b2])
            self.expect_error(f"PUSH [{v1.seq}, {b2.seq}] after the quarantine of {b1.seq}", c, 14, False, close=False,
                              names_op=b2.seq, first=m)
            self.refused.add(op_key(b2))
            c.send(sp.Bye("reconnecting"))
        c = self.fresh(n)
        with c:
            rep.check(f"nothing of the refused PUSHes was stored: acked_seq {ok_op.seq} (not {v1.seq})",
                      c.welcome.acked_seq == ok_op.seq, str(ok_op.seq), str(c.welcome.acked_seq))
            v3 = n.write("customer", "c-sn-1", "phone", sp.Value.text("13933334444"))
            self.push_expect_ack(f"PUSH [{v1.seq}, {v3.seq}] without the refused {b1.seq}, {b2.seq} → PUSH_ACK {v3.seq}",
                                 c, n, [v1, v3], v3.seq)
            cases = [
                ("id with a trailing space (§9 ids)", n.write("customer", "c-sn-1 ", "name", sp.Value.text("x")), 14),
                ("write to a field customer does not have (§9 writes)", n.write("customer", "c-sn-1", "colour", sp.Value.text("x")), 14),
                ("bytes value (no schema-1 field takes bytes)", n.write("customer", "c-sn-1", "name", sp.Value.blob(b"\xab")), 14),
                ("integer out of range (gender 0–2)", n.write("customer", "c-sn-1", "gender", sp.Value.integer(3)), 14),
                ("text with a C0 control (U+0007)", n.write("customer", "c-sn-1", "name", sp.Value.text("a\x07b")), 14),
                ("status move cancelled → paid", n.op(sp.OP_STATUS, sp.StatusBody("o-sn-1", 5, 2)), 14),
                ("points delta 0", n.op(sp.OP_POINTS, sp.PointsBody("c-sn-1", 0)), 14),
                ("points delta over 10^12", n.op(sp.OP_POINTS, sp.PointsBody("c-sn-1", 10 ** 12 + 1)), 14),
                ("store writes a tag (permission)", n.write("tag", "et_x", "name", sp.Value.text("x")), 8),
                ("store redeems points (permission)", n.op(sp.OP_POINTS, sp.PointsBody("c-sn-1", -5)), 8),
                ("store deletes a tag (permission)", n.op(sp.OP_TAG_DELETION, sp.TagDeletionBody(4, "et_gold")), 8),
                ("tag deletion naming a customer", None, 14),
                ("the same stamp twice in a list", None, 14),
                ("customer id not in NFC (e + U+0301)", n.write("customer", "ce\u0301", "name", sp.Value.text("x")), 14),
                ("customer id of 65 scalar values", n.write("customer", "c" * 65, "name", sp.Value.text("x")), 14),
                ("a write to customer_tag (a set: add/remove only)",
                 n.write("customer_tag", "c-sn-1", "name", sp.Value.text("x"), sub="et_gold"), 14),
                ("author with a zero-width space (Cf)", n.write("customer", "c-sn-1", "name", sp.Value.text("x"),
                                                               author="wm\u200blin"), 14),
            ]
            for i, (what, op, code) in enumerate(cases):
                if what.startswith("tag deletion naming"):
                    # HQ-only kind; from a store it is permission (8) — use kind 5 customer; either
                    # rule refuses it. ASSUMPTION: permission is checked before the instance kind.
                    op = n.op(sp.OP_TAG_DELETION, sp.TagDeletionBody(5, "c-sn-1"))
                    code = (8, 14)
                if what.startswith("the same stamp"):
                    s = stamp(first)
                    op = n.op(sp.OP_REMOVE_TAG, sp.PairBody("c-sn-1", "et_gold"), stamps=[s, s])
                m = self.push(c, n, [op])
                codes = code if isinstance(code, tuple) else (code,)
                if isinstance(m, sp.Error) and m.code in codes:
                    code = m.code
                else:
                    code = codes[0]
                self.expect_error(f"op {op.seq}: {what}", c, code, False, close=False, names_op=op.seq, first=m)
                self.refused.add(op_key(op))
            good = n.write("customer", "c-sn-1", "phone", sp.Value.text("13900000000"))
            self.push_expect_ack(f"a valid op after {len(cases)} refusals → PUSH_ACK {good.seq} (all settled)",
                                 c, n, [good], good.seq)
            # the data rules are the whole list (§9: 'two hubs accept exactly the same ops'): these pass
            fine = [
                n.write("customer", "c-sn-1", "name", sp.Value.text("👨\u200d👩\u200d👧 王\n二")),   # ZWJ (Cf) and LF in text
                n.write("customer", "c-sn-2", "owner_store", sp.Value.text("sn"), author=""),
                n.write("order", "o-sn-1", "store_id", sp.Value.text("sn")),                 # a new order of sn
                n.op(sp.OP_STATUS, sp.StatusBody("o-sn-1", 0, 2)),                           # draft → paid
                n.op(sp.OP_STATUS, sp.StatusBody("o-sn-1", 2, 6)),                           # paid → refunded
                # a stamp 120 s in the future: §9 limits the op's clock, not its stamps'
                n.write("customer", "c-sn-1", "phone", sp.Value.text("1"),
                        stamps=[sp.Stamp(sp.hlc(int(time.time() * 1000) + 120_000), "sb")]),
                n.write("customer", "c-sn-1", "gender", sp.Value.null()),
                n.write("customer", "c" * 64, "owner_store", sp.Value.text("sn")),
                n.write("customer", "c" * 64, "name", sp.Value.text("界" * 64)),             # 64 scalars, 192 bytes
            ]
            good = fine[-1]
            self.push_expect_ack("valid edge cases (ZWJ and LF in text, empty author, draft → paid → refunded, "
                                 "a stamp 120 s ahead, null, a 64-scalar id) → PUSH_ACK", c, n, fine, good.seq)
            # clock skew: 120 s ahead → 9, retryable, names the op, nothing recorded
            skew = n.write("customer", "c-sn-1", "name", sp.Value.text("未来"), ahead_ms=120_000)
            m = self.push(c, n, [skew])
            self.expect_error(f"op {skew.seq}: clock 120 s ahead (§10 window 30 s)", c, 9, True, close=False,
                              names_op=skew.seq, first=m)
            n.clock = Clock()   # the node's clock is "fixed"
            again = n.write("customer", "c-sn-1", "name", sp.Value.text("现在"), seq=skew.seq)
            self.push_expect_ack(f"the same number {skew.seq} pushed again with a good clock → PUSH_ACK", c, n,
                                 [again], skew.seq)
            # numbered more than 65,536 past acked_seq → 12 (busy, retryable), names no op, nothing
            # stored or recorded (§7 "Limits", §10): once the ops before it are held it is taken
            far = n.write("customer", "c-sn-1", "name", sp.Value.text("远"), seq=n.acked + 65_537)
            m = self.push(c, n, [far])
            self.expect_error(f"op {far.seq}: numbered 65,537 past acked_seq", c, 12, True, close=False,
                              names_no_op=True, first=m)
            # still within: exactly 65,536 past is allowed (stored after a gap, ack unchanged)
            edge = n.write("customer", "c-sn-1", "name", sp.Value.text("边"), seq=n.acked + 65_536)
            acked = n.acked
            self.push_expect_ack("an op numbered exactly 65,536 past acked_seq is taken (gap, ack unchanged)",
                                 c, n, [edge], acked)
            c.send(sp.Bye("done"))
        self.ns_edge = edge
        self.still_serving("after the refused PUSHes")

        # origin of another node → 8, names no op, closes
        c = self.fresh(n)
        with c:
            forged = n.write("customer", "c-sn-1", "name", sp.Value.text("x"), origin="sa", seq=1000)
            m = self.push(c, n, [forged])
            self.expect_error("PUSH of an op whose origin is another node", c, 8, False, close=True,
                              names_no_op=True, first=m)
        c = self.fresh(n)
        with c:
            wrong_role = n.write("customer", "c-sn-1", "name", sp.Value.text("x"), role=ROLE_HQ, seq=1001)
            m = self.push(c, n, [wrong_role])
            self.expect_error("PUSH of an op with role hq from a store node", c, 8, False, close=True,
                              names_no_op=True, first=m)
        c = self.fresh(n)
        with c:
            new = n.write("customer", "c-sn-1", "name", sp.Value.text("x"), seq=1002)
            c.send(sp.Push(sp.ChangeSet(self.hub_schema + 1, [new])))
            self.expect_error(f"PUSH of a change set with schema_version {self.hub_schema + 1}", c, 7, False, close=True)
        self.still_serving("after the closing refusals")
        hq = self.nodes["hq"]
        c = self.fresh(hq)
        with c:
            op = hq.op(sp.OP_TAG_DELETION, sp.TagDeletionBody(5, "c-sa-1"), author="admin")
            m = self.push(c, hq, [op])
            self.expect_error(f"HQ op {op.seq}: tag deletion naming a customer (§9 tag deletions)", c, 14, False,
                              close=False, names_op=op.seq, first=m)
            self.refused.add(op_key(op))
            ok = hq.write("tag", "et_gold", "sort_order", sp.Value.integer(1), author="admin")
            self.push_expect_ack(f"HQ's next op {ok.seq} settles it", c, hq, [ok], ok.seq)
            c.send(sp.Bye("done"))
        sb = self.nodes["sb"]
        c = self.fresh(sb)
        with c:
            op = sb.write("customer", "c-sa-1", "name", sp.Value.text("别家"))
            m = self.push(c, sb, [op])
            self.expect_error(f"op {op.seq}: store sb writes customer c-sa-1 of store sa (§7 Write rights: scope)",
                              c, 8, False, close=False, names_op=op.seq, first=m)
            self.refused.add(op_key(op))
            if isinstance(m, sp.Error):
                rep.check("the refusal names the rule (§7 Write rights)", "(rule scope)" in m.message,
                          "'(rule scope)' in the message", m.message)
            op2 = sb.write("customer", "c-sa-1", "name", sp.Value.text("别家"), author="wm_lin")
            m = self.push(c, sb, [op2])
            self.expect_error(f"op {op2.seq}: store sb names sa's clerk wm_lin as author (§7 Write rights: author)",
                              c, 8, False, close=False, names_op=op2.seq, first=m)
            self.refused.add(op_key(op2))
            c.send(sp.Bye("done"))
        c = self.fresh(hq)
        with c:
            c.send(sp.Pull(0, 64))
            c.send(sp.Pull(0, 64))
            got = []
            try:
                for _ in range(2):
                    got.append(c.recv())
            except (Closed, TimedOut) as e:
                got.append(str(e))
            rep.note("two PULLs outstanding (§7: a node SHOULD have one; a hub MAY refuse with 12)",
                     ", ".join(describe(x) for x in got))
            c.close()
        # the refused ops are not relayed; the accepted ones are
        hq = self.nodes["hq"]
        c, w = hq.connect(self.addr)
        with c:
            res = pull_all(rep, "HQ pulls again from its cursor", c, self.hq_cursor, 4096)
            keys = {op_key(o) for o in res.ops}
            leaked = sorted(k for k in keys if k in self.refused)
            rep.check("no refused op is relayed", not leaked, "none of the refused ops", str(leaked) if leaked else "none")
            ns_ok = [k for k in self.push_order if k[0] == "ns"]
            miss = [k for k in ns_ok if k not in keys]
            rep.check("every op ns got acknowledged (or stored after a gap) is relayed to HQ", not miss,
                      f"{len(ns_ok)} ops", f"missing {miss}" if miss else f"all {len(ns_ok)}")
            rep.check("WELCOME.log_head counts every stored op (positions 1, 2, 3, …)",
                      w.log_head == len(self.accepted), str(len(self.accepted)), str(w.log_head), should=True)
            c.send(sp.Bye("done"))

    # ---------------------------------------------------------------------------------------
    def auth_failures(self) -> None:
        rep, a = self.rep, self.nodes["sa"]
        rep.begin("authentication and HELLO")
        msgs = []
        for what, node, role, secret in [
            ("wrong MAC", a.id, a.role, "0" * 64),
            ("unknown node", "ghost", ROLE_STORE, a.secret),
            ("HELLO role hq for a node registered as store", a.id, ROLE_HQ, a.secret),
        ]:
            c = Conn(self.addr)
            with c:
                try:
                    ch = c.hello(node, role)
                    c.authenticate(secret)
                    m = c.recv()
                except (Closed, TimedOut, Unexpected, sp.SiyuError) as e:
                    m = str(e)
                    rep.note(f"{what}: before AUTH", f"the hub answered HELLO with {getattr(e, 'got', e)!r}")
                    if isinstance(getattr(e, "got", None), sp.Error):
                        m = e.got
                codes = (5, 6) if what == "unknown node" else (5,)
                code = m.code if isinstance(m, sp.Error) and m.code in codes else 5
                e = self.expect_error(what, c, code, False, close=True, first=m if not isinstance(m, str) else None)
                if e is not None:
                    msgs.append(e.message)
        rep.check("the three auth refusals read the same (§6: SHOULD NOT say which)", len(set(msgs)) <= 1,
                  "one message", " | ".join(repr(x) for x in msgs), should=True)
        rep.check("every CHALLENGE nonce so far is 32 bytes and fresh", len(set(Conn.nonces)) == len(Conn.nonces)
                  and all(len(x) == 32 for x in Conn.nonces), "distinct", f"{len(Conn.nonces)} nonces, "
                  f"{len(set(Conn.nonces))} distinct")
        # a replayed AUTH from another connection
        c1 = Conn(self.addr)
        with c1:
            ch1 = c1.hello(a.id, a.role)
            mac1 = c1.proof(a.secret)
            c2 = Conn(self.addr)
            with c2:
                c2.hello(a.id, a.role)
                c2.send(sp.Auth(mac1))
                self.expect_error("AUTH replayed from another connection's nonce", c2, 5, False, close=True)
        # versions
        c = Conn(self.addr)
        with c:
            c.send(sp.Hello(a.id, a.role, b"\x01", 1))
            self.expect_error("HELLO offering only version 1 (withdrawn, section 4)", c, 4, False, close=True)
        c = Conn(self.addr)
        with c:
            try:
                ch = c.hello(a.id, a.role, b"\x03\x01\x02\x01")
                ok, got = ch.version == 2, describe(ch)
            except Exception as e:  # noqa: BLE001
                ok, got = False, str(e)
            rep.check("HELLO offering 3, 1, 2, 1 → CHALLENGE version 2", ok, "version 2", got)
        c = Conn(self.addr)
        with c:
            c.send(sp.Hello(a.id, a.role, b"", 1))
            try:
                m = c.recv()
            except (Closed, TimedOut) as e:
                m = str(e)
            closed, _ = c.wait_closed() if isinstance(m, sp.Error) else (None, None)
            rep.note("HELLO with an empty versions list (§4 'MUST hold at least one'; no error code given)",
                     f"{describe(m)}" + (f", closed={closed}" if closed is not None else ""))
        c = Conn(self.addr)
        with c:
            c.send(sp.Hello(a.id, a.role, b"\x02", self.hub_schema + 1, os.urandom(32)))
            self.expect_error(f"HELLO with schema_version {self.hub_schema + 1}", c, 7, False, close=True)
        c = Conn(self.addr)
        with c:
            payload = sp.encode_payload(sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32))) + b"\x07future"
            c.hello_payload = payload   # the transcript holds the payload as sent (section 6)
            c.send_raw(sp.encode_frame(sp.Hello.TYPE, payload))
            try:
                ch = c.expect(sp.Challenge)
                c.authenticate(a.secret)
                w = c.expect(sp.Welcome)
                ok, got = True, describe(w)
            except Unexpected as e:
                ok, got = False, str(e)
            rep.check("HELLO with a later version's field appended → handshake succeeds", ok, "WELCOME", got)
        c = Conn(self.addr)
        with c:
            payload = bytearray(sp.encode_payload(sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32))))
            payload[1 + len(a.id)] = 2    # role byte 2
            c.send_raw(sp.encode_frame(sp.Hello.TYPE, bytes(payload)))
            self.expect_error("HELLO with role byte 2 (invalid value)", c, 1, False, close=True)
        c = Conn(self.addr)
        with c:
            c.send_raw(sp.encode_frame(sp.Hello.TYPE, sp.encode_string(a.id)[:3]))
            self.expect_error("HELLO truncated inside node_id", c, 1, False, close=True)
        c = Conn(self.addr)
        with c:
            bad_id = "bad\u200bid"
            c.send(sp.Hello(bad_id, ROLE_STORE, b"\x02", 1, os.urandom(32)))
            seen = []
            try:
                m = c.recv()
                seen.append(describe(m))
                if isinstance(m, sp.Challenge):
                    c.authenticate("x")
                    seen.append(describe(c.recv()))
            except (Closed, TimedOut) as e:
                seen.append(str(e))
            rep.note("HELLO node id breaking the id rule (§9 ids apply to HELLO's node id; no code named)",
                     " → ".join(seen))
        c = Conn(self.addr)
        with c:
            c.send(sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32)))
            c.expect(sp.Challenge)
            c.send_frame(sp.Auth.TYPE, b"\x00" * 31)
            self.expect_error("AUTH with a 31-byte MAC (truncated)", c, 1, False, close=True)
        self.still_serving("after the auth/HELLO refusals")

    # ---------------------------------------------------------------------------------------
    def framing(self) -> None:
        rep, a = self.rep, self.nodes["sa"]
        rep.begin("framing errors and message types")

        def bad_crc(frame: bytes) -> bytes:
            return frame[:-1] + bytes([frame[-1] ^ 0xFF])

        hello = sp.encode_message(sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32)))
        c = Conn(self.addr)
        with c:
            c.send_raw(bad_crc(hello))
            self.expect_error("HELLO with a bad checksum", c, 2, True, close=True)
        c = self.fresh(a)
        with c:
            c.send_raw(bad_crc(c.seal_bytes(sp.encode_message(sp.Ping(1), 2))))
            self.expect_error("PING with a bad checksum in ready", c, 2, True, close=True)
        c = Conn(self.addr)
        with c:
            c.send_raw(b"GET / HTTP/1.1\r\n\r\n")
            self.expect_error("bad magic (an HTTP request)", c, 1, False, close=True)
        c = self.fresh(a)
        with c:
            c.send_raw(b"SY\x01\x30" + (sp.MAX_PAYLOAD + 1).to_bytes(4, "big"))   # header only
            self.expect_error("header declaring 1,048,577 bytes (refused without the payload)", c, 3, False, close=True)
        c = Conn(self.addr)
        with c:
            c.send_raw(sp.encode_frame(sp.Hello.TYPE, sp.encode_payload(sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32))), version=2))
            self.expect_error("HELLO in a version 2 frame", c, 4, False, close=True)
        c = self.fresh(a)
        with c:
            c.send_frame(sp.Ping.TYPE, sp.encode_varint(1), version=1)
            self.expect_error("PING in a version 1 frame after version 2 was chosen", c, 4, False, close=True)
        c = self.fresh(a)
        with c:
            c.send_frame(sp.Pull.TYPE, sp.encode_varint(0))   # budget missing
            self.expect_error("PULL truncated (no byte_budget)", c, 1, False, close=True)
        c = self.fresh(a)
        with c:
            cs = sp.encode_change_set(sp.ChangeSet(1, [a.write("customer", "c-sa-1", "name", sp.Value.text("x"))]))
            bad = cs[:1] + b"\x05" + cs[2:]    # string_base 5, the dictionary is empty
            c.send_frame(sp.Push.TYPE, bad)
            a.seq -= 1
            self.expect_error("PUSH with string_base 5 on an empty dictionary", c, 1, False, close=True)
        # unknown types 0x00-0x7F, in each state
        for state in ("hello", "challenged", "ready"):
            for t in (0x00, 0x05, 0x7F):
                c = Conn(self.addr)
                with c:
                    if state != "hello":
                        ch = c.hello(a.id, a.role)
                        if state == "ready":
                            c.authenticate(a.secret)
                            c.expect(sp.Welcome)
                    c.send_frame(t, b"")
                    self.expect_error(f"unknown type 0x{t:02x} in {state}", c, 11, False, close=True)
        # ignorable types 0x80-0xFF are skipped in every state
        c = Conn(self.addr)
        with c:
            try:
                c.send_raw(sp.encode_frame(0x80, b"\x01\x02\x03"))
                ch = c.hello(a.id, a.role)
                c.send_frame(0xFF, b"")
                c.authenticate(a.secret)
                w = c.expect(sp.Welcome)
                c.send_frame(0x9A, b"\xff" * 40)
                ok, got = c.ping(3), "HELLO→CHALLENGE, AUTH→WELCOME, PING→PONG"
            except Exception as e:  # noqa: BLE001
                ok, got = False, str(e)
            rep.check("ignorable frames 0x80 (before HELLO), 0xFF (challenged), 0x9A (ready) are skipped", ok,
                      "the session goes on as if they were not there", got)
        # messages illegal in the state: 10 and close
        ready_cases = [
            ("HELLO", sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32))),
            ("AUTH", sp.Auth(b"\x00" * 32)),
            ("CHALLENGE", sp.Challenge(2, HUB_ID, b"\x00" * 32, b"\x00" * 16, 4096)),
            ("WELCOME", sp.Welcome(0, 0, 1)),
            ("PUSH_ACK", sp.PushAck(1)),
            ("CHANGES", sp.Changes(0, False, sp.ChangeSet(1, []))),
            ("SNAPSHOT_BEGIN", sp.SnapshotBegin(1, 0, 0)),
            ("SNAPSHOT_END", sp.SnapshotEnd(1, 0, b"\x00" * 32)),
        ]
        for state, cases in [
            ("hello", [("AUTH", sp.Auth(b"\x00" * 32)), ("PING", sp.Ping(1)), ("PUSH", sp.Push(sp.ChangeSet(1, []))),
                       ("PULL", sp.Pull(0, 0)), ("WELCOME", sp.Welcome(0, 0, 1))]),
            ("challenged", [("HELLO", sp.Hello(a.id, a.role, b"\x02", 1, os.urandom(32))), ("PING", sp.Ping(1)),
                            ("PULL", sp.Pull(0, 0)), ("PUSH", sp.Push(sp.ChangeSet(1, [])))]),
            ("ready", ready_cases),
        ]:
            for name, msg in cases:
                c = Conn(self.addr)
                with c:
                    if state != "hello":
                        ch = c.hello(a.id, a.role)
                        if state == "ready":
                            c.authenticate(a.secret)
                            c.expect(sp.Welcome)
                    c.send(msg)
                    self.expect_error(f"{name} in state {state}", c, 10, False, close=True)
        # the node sends ERROR: the hub closes
        c = self.fresh(a)
        with c:
            c.send(sp.Error(15, True, "client test: internal error"))
            closed, extra = c.wait_closed()
            rep.check("after the node's ERROR 15 the hub closes", closed, "EOF",
                      ("EOF" if closed else "still open") + (f" after {[describe(x) for x in extra]}" if extra else ""))
        c = self.fresh(a)
        with c:
            c.send(sp.Error(99, False, "client test: a code from the future"))
            closed, extra = c.wait_closed()
            rep.check("after the node's ERROR with unknown code 99 the hub closes (treated as internal_error)", closed,
                      "EOF", ("EOF" if closed else "still open") + (f" after {[describe(x) for x in extra]}" if extra else ""))
        c = self.fresh(a)
        with c:
            c.send(sp.Error(13, True, "client test: cursor too old"))
            closed, extra = c.wait_closed(2.0)
            rep.check("after the node's ERROR 13 the hub closes (§8: an ERROR a node sends ends the connection, "
                      "whatever its code; row 13: 'one sent by a node ends the connection'; FINDINGS F1, settled)", closed, "EOF",
                      ("EOF" if closed else "still open") + (f" after {[describe(x) for x in extra]}" if extra else ""))
        self.still_serving("after the framing and state errors")

    # ---------------------------------------------------------------------------------------
    def snapshots(self) -> None:
        rep, hq, b = self.rep, self.nodes["hq"], self.nodes["sb"]
        rep.begin("PULL past the log head → snapshot reason 2")
        for node in (hq, b):
            c, w = node.connect(self.addr)
            with c:
                past = w.log_head + 1000
                c.send(sp.Pull(past, 0))
                try:
                    m = c.recv()
                except (Closed, TimedOut) as e:
                    m = str(e)
                ok = isinstance(m, sp.SnapshotBegin) and m.reason == 2
                rep.check(f"{node.id}: PULL cursor {past} (log head {w.log_head}) → SNAPSHOT_BEGIN reason 2, no ERROR 13",
                          ok, "SNAPSHOT_BEGIN reason=2", describe(m))
                if not isinstance(m, sp.SnapshotBegin):
                    continue
                rep.check(f"{node.id}: the snapshot's cursor is within the log", m.cursor <= w.log_head,
                          f"≤ {w.log_head}", str(m.cursor))
                sid, n, sops = m.snapshot_id, 0, []
                okc, detail = True, ""
                while True:
                    try:
                        x = c.recv()
                    except (Closed, TimedOut) as e:
                        okc, detail = False, str(e)
                        break
                    if isinstance(x, sp.SnapshotChunk) and x.snapshot_id == sid and x.index == n:
                        n += 1
                        sops += x.change_set.ops
                    elif isinstance(x, sp.SnapshotEnd):
                        okc = x.snapshot_id == sid and x.chunk_count == n and len(x.digest) == 32
                        detail = describe(x)
                        break
                    else:
                        okc, detail = False, describe(x)
                        break
                rep.check(f"{node.id}: chunks 0..n-1 then SNAPSHOT_END with chunk_count n", okc,
                          f"SNAPSHOT_END id {sid} chunk_count {n}", detail)
                stray = [f"{o.origin}#{o.seq}" for o in sops
                         if op_key(o) not in self.accepted or self.accepted[op_key(o)] != o]
                rep.check(f"{node.id}: every snapshot op is an op some node pushed and the hub took, unchanged",
                          not stray, "only accepted ops", f"{len(sops)} ops" + (f"; not matching: {stray[:8]}" if stray else ""))
                if node is hq:
                    rep.note("HQ snapshot size", f"{len(sops)} ops in {n} chunk(s); the hub took {len(self.accepted)}")
                pull_all(rep, f"{node.id}: PULL from the snapshot's cursor {m.cursor}", c, m.cursor, 0)
                c.send(sp.Bye("done"))

    # ---------------------------------------------------------------------------------------
    def transfer(self) -> None:
        """§7 Transfers: HQ moves customer c-sa-1 from sa to sb. sb's next PULL is a snapshot of
        reason 1 holding the customer's history of every origin; sa receives the moving op by CHANGES."""
        rep, a, b, hq = self.rep, self.nodes["sa"], self.nodes["sb"], self.nodes["hq"]
        rep.begin("transfer of a customer between stores (§7 Transfers)")
        cursors = {}
        for node in (a, b):
            c, w = node.connect(self.addr)
            with c:
                cursors[node.id] = pull_all(rep, f"{node.id} catches up before the transfer", c, 0, 0).cursor
                c.send(sp.Bye("done"))
        c = self.fresh(hq)
        with c:
            move = hq.write("customer", "c-sa-1", "owner_store", sp.Value.text("sb"), author="admin")
            self.push_expect_ack("HQ writes owner_store 'sb' on c-sa-1 → PUSH_ACK", c, hq, [move], move.seq)
            c.send(sp.Bye("done"))
        history = [o for o in self.batch1 if o.kind == sp.OP_WRITE and o.body.id == "c-sa-1"]
        c, w = b.connect(self.addr)
        with c:
            res = pull_all(rep, "sb pulls after the transfer", c, cursors[b.id], 0)
            reasons = [r for (_, _, r, _) in res.snapshots]
            rep.check("sb's PULL from before the move is answered with a snapshot of reason 1", reasons[:1] == [1],
                      "SNAPSHOT_BEGIN reason=1", str(res.snapshots) or "no snapshot")
            got = {op_key(o) for o in res.ops}
            miss = [f"{o.origin}#{o.seq}" for o in history + [move] if op_key(o) not in got]
            rep.check("the snapshot holds c-sa-1's history of every origin (sa's writes, HQ's move)", not miss,
                      f"{len(history) + 1} ops", f"missing {miss}" if miss else "all")
            c.send(sp.Bye("done"))
        c, w = a.connect(self.addr)
        with c:
            res = pull_all(rep, "sa pulls after the transfer", c, cursors[a.id], 0)
            rep.check("sa receives the op that moved c-sa-1 out of its scope, by CHANGES (it then drops the customer)",
                      op_key(move) in {op_key(o) for o in res.change_ops} and not res.snapshots,
                      f"{move.origin}#{move.seq} in CHANGES", f"{len(res.change_ops)} ops, snapshots {res.snapshots}")
            c.send(sp.Bye("done"))

    # ---------------------------------------------------------------------------------------
    def keepalive(self) -> None:
        rep = self.rep
        rep.begin("keepalive (§7: a connection not ready within 10 s SHOULD be closed)")
        c = Conn(self.addr, timeout=20)
        with c:
            t0 = time.monotonic()
            closed, extra = c.wait_closed(16.0)
            dt = time.monotonic() - t0
            rep.check("a connection that never sends HELLO is closed after about 10 s", closed and dt >= 9.0,
                      "closed after 10 s (≥ 9 s, < 16 s)", f"{'closed' if closed else 'open'} after {dt:.1f} s"
                      + (f", {[describe(x) for x in extra]}" if extra else ""), should=True)
        c = Conn(self.addr, timeout=20)
        with c:
            c.hello(self.nodes["sa"].id, ROLE_STORE)
            t0 = time.monotonic()
            closed, extra = c.wait_closed(16.0)
            dt = time.monotonic() - t0
            rep.check("a connection left in challenged is closed within 10 s of opening", closed and dt < 11.0,
                      "closed ≤ 10 s", f"{'closed' if closed else 'open'} after {dt:.1f} s"
                      + (f", {[describe(x) for x in extra]}" if extra else ""), should=True)

    def silence(self) -> None:
        rep = self.rep
        rep.begin("keepalive (§7: 60 s without receiving anything closes the connection)")
        c, w = self.nodes["hq"].connect(self.addr)
        with c:
            t0 = time.monotonic()
            closed, extra = c.wait_closed(80.0)
            dt = time.monotonic() - t0
            pings = [x for x in extra if isinstance(x, sp.Ping)]
            rep.note("a ready connection on which the node sends nothing (is an idle hub 'waiting on its peer'?)",
                     f"{'closed' if closed else 'open'} after {dt:.1f} s; hub PINGs: {len(pings)}; "
                     f"other: {[describe(x) for x in extra if not isinstance(x, sp.Ping)]}")

    def wire_summary(self) -> None:
        rep = self.rep
        rep.begin("every frame and change set the hub sent")
        rep.check("every frame from the hub is a version 1 (CHALLENGE) or version 2 frame", set(Conn.frame_versions) <= {1, 2}, "versions 1 and 2 only",
                  str(Conn.frame_versions))
        rep.check("no change set newer than the nodes' HELLO schema_version 1", set(Conn.changeset_schemas) <= {1},
                  "schema 1 only", str(Conn.changeset_schemas))

    # ---------------------------------------------------------------------------------------
    def shutdown_and_restart(self, bin_dir: str) -> None:
        rep, a, hq = self.rep, self.nodes["sa"], self.nodes["hq"]
        rep.begin("SIGTERM with a node connected, restart, snapshot for a new node")
        c, w = a.connect(self.addr)
        head = w.log_head
        epoch = w.log_epoch
        rep.check("WELCOME carries a 32-byte log_epoch (section 7, Log epochs)", len(epoch) == 32, "32 bytes",
                  f"{len(epoch)} bytes")
        rc = self.hub.stop()
        with c:
            try:
                m = c.recv()
            except (Closed, TimedOut, sp.SiyuError) as e:
                m = str(e)
            rep.check("on SIGTERM the hub says BYE to a connected node (README: BYE to every node)",
                      isinstance(m, sp.Bye), "BYE", describe(m), should=True)
        rep.check("siyu-hub serve exits 0 on SIGTERM", rc == 0, "0", str(rc))
        self.hub.serve("--snapshot-after", "1")
        c, w = a.connect(self.addr)
        with c:
            rep.check("after a restart WELCOME keeps acked_seq and log_head", w.acked_seq == a.acked and w.log_head == head,
                      f"acked_seq {a.acked}, log_head {head}", describe(w))
            rep.check("after a clean stop and restart the log_epoch is kept (nodes keep their cursors)",
                      w.log_epoch == epoch, epoch.hex()[:16], w.log_epoch.hex()[:16])
            c.send(sp.Bye("done"))
        c, w = hq.connect(self.addr)
        with c:
            res = pull_all(rep, "HQ from cursor 0 on a hub run with --snapshot-after 1", c, 0, 0)
            reasons = [s[2] for s in res.snapshots]
            rep.note("cursor 0 with a log over --snapshot-after (§7 Scope: reason 0 'the hub prefers it')",
                     f"snapshots {res.snapshots}, {len(res.change_ops)} ops by CHANGES")
            if res.snapshots:
                rep.check("a bootstrap snapshot has reason 0", reasons[0] == 0, "reason 0", str(reasons))
            gotk = {op_key(o) for o in res.ops}
            miss = [k for k in self.push_order if k not in gotk]
            rep.note("ops rebuilt by snapshot + CHANGES (a snapshot MAY compact)",
                     f"{len(gotk)} distinct of {len(self.push_order)} accepted; absent: {miss[:10]}{'…' if len(miss) > 10 else ''}")
            c.send(sp.Bye("done"))
        rc = self.hub.stop()
        rep.check("siyu-hub serve (second run) exits 0 on SIGTERM", rc == 0, "0", str(rc))


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hub-bin", metavar="DIR", help="directory holding siyu-hub (default: swift build it)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (hub.db, hub.log)")
    ap.add_argument("--skip-keepalive", action="store_true", help="skip the ~25 s keepalive checks")
    ap.add_argument("--slow", action="store_true", help="also wait 80 s on a silent ready connection (60 s rule)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only FAIL/WARN/NOTE lines and the summary")
    args = ap.parse_args()
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    bin_dir = os.path.abspath(args.hub_bin) if args.hub_bin else build(repo)
    rep = Report(args.quiet)
    tmp = tempfile.mkdtemp(prefix="siyu-live-")
    hub = Hub(bin_dir, tmp)
    try:
        hub.init()
        nodes = {
            "sa": Node("sa", ROLE_STORE, hub.add_node("sa", ROLE_STORE, "sa")),
            "sb": Node("sb", ROLE_STORE, hub.add_node("sb", ROLE_STORE, "sb"), author="wm_sb"),
            "ns": Node("ns", ROLE_STORE, hub.add_node("ns", ROLE_STORE, "sn"), author="wm_sn"),
            "hq": Node("hq", ROLE_HQ, hub.add_node("hq", ROLE_HQ)),
        }
        setup = Node("hq-setup", ROLE_HQ, hub.add_node("hq-setup", ROLE_HQ), author="")
        for n in nodes.values():
            if not re.fullmatch(r"[0-9a-f]{64}", n.secret):
                sys.exit(f"add-node printed {n.secret!r}, not a 64-hex secret")
        hub.serve("--snapshot-after", "100000")
        print(f"hub {HUB_ID} listening on {hub.addr[0]}:{hub.addr[1]} (temp dir {tmp})", flush=True)
        s = Suite(rep, hub, nodes)
        s.setup = setup
        steps = [s.setup_staff, s.handshake_and_push, s.cross_check, s.pushes_refused, s.auth_failures, s.framing, s.snapshots,
                 s.transfer]
        if not args.skip_keepalive:
            steps.append(s.keepalive)
        if args.slow:
            steps.append(s.silence)
        steps.append(s.wire_summary)
        for step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001 - a crash of one step is a FAIL, the rest goes on
                rep.check(f"{step.__name__} ran to the end", False, "no exception",
                          f"{e.__class__.__name__}: {e}")
            if hub.proc is not None and hub.proc.poll() is not None:
                rep.check("the hub process is alive", False, "running", f"exited with {hub.proc.returncode}")
                break
        if hub.proc is not None and hub.proc.poll() is None:
            try:
                s.shutdown_and_restart(bin_dir)
            except Exception as e:  # noqa: BLE001
                rep.check("shutdown_and_restart ran to the end", False, "no exception", f"{e.__class__.__name__}: {e}")
    finally:
        hub.kill()
        if hub.log and not hub.log.closed:
            hub.log.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    c = rep.counts
    print(f"\n{c['PASS']} passed, {c['FAIL']} failed, {c['WARN']} warnings (SHOULD), {c['NOTE']} notes (spec open)")
    return 1 if c["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
