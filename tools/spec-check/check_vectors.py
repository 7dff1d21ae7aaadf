#!/usr/bin/env python3
"""Check Protocol/vectors/*.vec against the independent implementation in siyu_protocol.py.

Run from the repository root:  python3 tools/spec-check/check_vectors.py [-q]
Exit status 0 only if every check passes.
"""

from __future__ import annotations

import glob
import os
import random
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siyu_protocol as sp  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VECTOR_DIR = os.environ.get("SIYU_VECTOR_DIR") or os.path.join(ROOT, "Protocol", "vectors")

QUIET = "-q" in sys.argv


class Failure(Exception):
    pass


def say(*a):
    if not QUIET:
        print(*a)


# ------------------------------------------------------------------------------------------
# .vec parsing (section 11)
# ------------------------------------------------------------------------------------------

class Vector:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-4]
        self.comments: list[str] = []
        self.sections: dict[str, list[str]] = {}
        cur = None
        with open(path, encoding="utf-8") as f:
            for raw in f.read().splitlines():
                if not raw.strip():
                    continue
                if raw.startswith("#"):
                    self.comments.append(raw[1:].strip())
                    continue
                m = re.fullmatch(r"(\w+):", raw)
                if m:
                    cur = m.group(1)
                    self.sections[cur] = []
                    continue
                if cur is None or not raw.startswith("  "):
                    raise Failure(f"{self.name}: unexpected line {raw!r}")
                self.sections[cur].append(raw[2:])
        if "bytes" not in self.sections:
            raise Failure(f"{self.name}: no bytes: section")
        toks = " ".join(self.sections["bytes"]).split()
        if not all(re.fullmatch(r"[0-9a-fA-F]{2}", t) for t in toks):
            raise Failure(f"{self.name}: bad hex in bytes: section")
        self.data = bytes(int(t, 16) for t in toks)
        self.meaning = self.sections.get("meaning")
        self.error = " ".join(self.sections["error"]).strip() if "error" in self.sections else None
        if (self.meaning is None) == (self.error is None):
            raise Failure(f"{self.name}: needs exactly one of meaning:/error:")
        first = self.comments[0] if self.comments else ""
        if not first.startswith(self.name + ":"):
            raise Failure(f"{self.name}: first comment does not start with the file name: {first!r}")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

# Section 11: a vector with a `sealed:` section holds version 2 frames sealed under one direction's
# key of the session the hello, challenge and auth vectors make; set while such a vector is checked.
SEALING = {"key": None}


def tag_size(_msg_type):
    return sp.TAG_SIZE if SEALING["key"] is not None else 0


def feed_all(chunks):
    """Feed chunks to a fresh StreamDecoder. Returns (messages, error, offset_at_error, leftover)."""
    dec = sp.StreamDecoder(keep_ignored=True)
    dec.frames.tag_size = tag_size
    msgs, offset = [], 0
    for c in chunks:
        try:
            msgs += [m for m in dec.feed(c) if not isinstance(m, sp.Ignored)]
        except sp.SiyuError as e:
            msgs += e.decoded_before
            offset += len(c)
            # the stream must stay dead
            try:
                dec.feed(b"")
            except sp.SiyuError as e2:
                if e2 is not e:
                    raise Failure("decoder did not stay failed with the same error")
            else:
                raise Failure("decoder accepted input after an error")
            return msgs, e, offset, dec.buffered
        offset += len(c)
    return msgs, None, offset, dec.buffered


def frames_of(data):
    dec = sp.FrameDecoder()
    dec.tag_size = tag_size
    frames = dec.feed(data)
    if dec.buffered:
        raise Failure(f"{dec.buffered} bytes left over after the last frame")
    return frames


def split_variants(data):
    """(label, chunks) for: whole, byte by byte, every two-way split."""
    yield "whole", [data]
    yield "byte-by-byte", [data[i:i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield f"split@{i}", [data[:i], data[i:]]


# ------------------------------------------------------------------------------------------
# meaning: parsing and comparison
# ------------------------------------------------------------------------------------------

Q = r'"((?:[^"\\]|\\.)*)"'


def unq(s):
    return re.sub(r"\\(.)", r"\1", s)


def parse_str(s):
    m = re.fullmatch(Q, s)
    if not m:
        raise Failure(f"expected a quoted string, got {s!r}")
    return unq(m.group(1))


def parse_int(s):
    if not re.fullmatch(r"[+-]?\d+", s):
        raise Failure(f"expected an integer, got {s!r}")
    return int(s)


def parse_bool(s):
    if s not in ("true", "false"):
        raise Failure(f"expected true/false, got {s!r}")
    return s == "true"


def parse_hex(s):
    if not re.fullmatch(r"([0-9a-fA-F]{2})+", s):
        raise Failure(f"expected hex, got {s!r}")
    return bytes.fromhex(s)


def parse_hex_list(s):
    return bytes(int(t, 16) for t in re.split(r"\s*,\s*", s.strip()) if t)


def _norm(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parse_role(s):
    for k, v in sp.ROLES.items():
        if _norm(v) == _norm(s):
            return k
    raise Failure(f"unknown role {s!r}")


def parse_reason(s):
    for k, v in sp.SNAPSHOT_REASONS.items():
        if _norm(v) == _norm(s):
            return k
    raise Failure(f"unknown snapshot reason {s!r}")


NOTES: list[str] = []


def parse_code(s):
    m = re.fullmatch(r"(\d+)(?:\s*\((\w+)\))?", s)
    if not m:
        raise Failure(f"bad error code {s!r}")
    code = int(m.group(1))
    if m.group(2):
        spec_name = sp.ERROR_CODES.get(code)
        if spec_name is None or _norm(spec_name) != _norm(m.group(2)):
            raise Failure(f"error code {code} is named {m.group(2)!r}, spec says {spec_name!r}")
        if m.group(2) != spec_name:
            NOTES.append(f"error code {code} named {m.group(2)!r} in a vector, {spec_name!r} in SPEC section 8")
    return code


# meaning label -> (attribute, parser), per message
LABELS = {
    "HELLO": {"node": ("node_id", parse_str), "role": ("role", parse_role),
              "versions": ("versions", parse_hex_list), "schema_version": ("schema_version", parse_int),
              "nonce": ("nonce", parse_hex)},
    "CHALLENGE": {"version": ("version", parse_int), "hub": ("hub_id", parse_str), "nonce": ("nonce", parse_hex),
                  "salt": ("salt", parse_hex), "iterations": ("iterations", parse_int)},
    "AUTH": {"mac": ("mac", parse_hex)},
    "WELCOME": {"acked_seq": ("acked_seq", parse_int), "log_head": ("log_head", parse_int),
                "schema_version": ("schema_version", parse_int), "log_epoch": ("log_epoch", parse_hex)},
    "PUSH": {},
    "PUSH_ACK": {"acked_seq": ("acked_seq", parse_int)},
    "PULL": {"cursor": ("cursor", parse_int), "byte_budget": ("byte_budget", parse_int),
             "own_ops": ("own_ops", parse_bool)},
    "CHANGES": {"next_cursor": ("next_cursor", parse_int), "more": ("more", parse_bool)},
    "DIGEST_REQUEST": {"cursor": ("cursor", parse_int)},
    "DIGEST": {"position": ("position", parse_int), "digest": ("digest", parse_hex)},
    "SNAPSHOT_BEGIN": {"snapshot_id": ("snapshot_id", parse_int), "cursor": ("cursor", parse_int),
                       "reason": ("reason", parse_reason)},
    "SNAPSHOT_CHUNK": {"snapshot_id": ("snapshot_id", parse_int), "index": ("index", parse_int)},
    "SNAPSHOT_END": {"snapshot_id": ("snapshot_id", parse_int), "chunk_count": ("chunk_count", parse_int),
                     "digest": ("digest", parse_hex)},
    "PING": {"token": ("token", parse_int)},
    "PONG": {"token": ("token", parse_int)},
    "ERROR": {"code": ("code", parse_code), "retryable": ("retryable", parse_bool),
              "message": ("message", parse_str)},
    "BYE": {"reason": ("reason", parse_str)},
}


def parse_stamps(s):
    s = s.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise Failure(f"bad stamp list {s!r}")
    inner = s[1:-1].strip()
    if not inner:
        return ()
    out, pos = [], 0
    pat = re.compile(r"\s*(\d+)@" + Q + r"\s*(,|$)")
    while pos < len(inner):
        m = pat.match(inner, pos)
        if not m:
            raise Failure(f"bad stamp list {s!r}")
        out.append(sp.Stamp(int(m.group(1)), unq(m.group(2))))
        pos = m.end()
    return tuple(out)


def parse_value(s):
    s = s.strip()
    if s == "null":
        return sp.Value.null()
    m = re.fullmatch(r"int ([+-]?\d+)", s)
    if m:
        return sp.Value.integer(int(m.group(1)))
    m = re.fullmatch(r"text " + Q, s)
    if m:
        return sp.Value.text(unq(m.group(1)))
    m = re.fullmatch(r"bytes ((?:[0-9a-fA-F]{2})*)", s)
    if m:
        return sp.Value.blob(bytes.fromhex(m.group(1)))
    m = re.fullmatch(r"bool (true|false)", s)
    if m:
        return sp.Value.boolean(m.group(1) == "true")
    raise Failure(f"cannot parse value {s!r}")


def lookup(table, name, what):
    for k, v in table.items():
        if v == name:
            return k
    raise Failure(f"unknown {what} {name!r}")


def parse_op(line):
    m = re.fullmatch(Q + r"#(\d+) hlc (\d+) (\w+) by " + Q + r": (.*)", line)
    if not m:
        raise Failure(f"cannot parse op line {line!r}")
    origin, seq, clock, role, author, body = (unq(m.group(1)), int(m.group(2)), int(m.group(3)),
                                               parse_role(m.group(4)), unq(m.group(5)), m.group(6))
    stamps = ()
    if mm := re.fullmatch(r"write (\w+) " + Q + r"(?:/" + Q + r")? (\S+) = (.*) overwrites (\[.*\])", body):
        kind = sp.OP_WRITE
        entity = lookup(sp.ENTITIES, mm.group(1), "entity")
        sub = unq(mm.group(3)) if mm.group(3) is not None else None
        b = sp.WriteBody(entity, unq(mm.group(2)), sub, mm.group(4), parse_value(mm.group(5)))
        stamps = parse_stamps(mm.group(6))
    elif mm := re.fullmatch(r"(add|remove) (\w+) " + Q + "/" + Q + r" removes (\[.*\])", body):
        ent = lookup(sp.ENTITIES, mm.group(2), "entity")
        kinds = [k for k, e in sp.PAIR_ENTITY.items() if e == ent]
        if not kinds:
            raise Failure(f"no add/remove op for entity {mm.group(2)!r}")
        kind = min(kinds) if mm.group(1) == "add" else max(kinds)
        b = sp.PairBody(unq(mm.group(3)), unq(mm.group(4)))
        stamps = parse_stamps(mm.group(5))
    elif mm := re.fullmatch(r"status order " + Q + r" (\w+) -> (\w+) seen (\[.*\])", body):
        kind = sp.OP_STATUS
        b = sp.StatusBody(unq(mm.group(1)), lookup(sp.ORDER_STATUSES, mm.group(2), "status"),
                          lookup(sp.ORDER_STATUSES, mm.group(3), "status"))
        stamps = parse_stamps(mm.group(4))
    elif mm := re.fullmatch(r"points customer " + Q + r" ([+-]?\d+)", body):
        kind = sp.OP_POINTS
        b = sp.PointsBody(unq(mm.group(1)), int(mm.group(2)))
    elif mm := re.fullmatch(r"delete customer " + Q + r" observed (\[.*\])", body):
        kind = sp.OP_DELETE_CUSTOMER
        b = sp.DeleteCustomerBody(unq(mm.group(1)))
        stamps = parse_stamps(mm.group(2))
    elif mm := re.fullmatch(r"acknowledge (\w+) " + Q + r" conflict " + Q, body):
        kind = sp.OP_ACKNOWLEDGE
        b = sp.AcknowledgeBody(lookup(sp.INSTANCE_KINDS, mm.group(1), "instance kind"),
                               unq(mm.group(2)), unq(mm.group(3)))
    elif mm := re.fullmatch(r"tag_deletion (\w+) " + Q + r" seen (\[.*\])", body):
        kind = sp.OP_TAG_DELETION
        b = sp.TagDeletionBody(lookup(sp.INSTANCE_KINDS, mm.group(1), "instance kind"), unq(mm.group(2)))
        stamps = parse_stamps(mm.group(3))
    else:
        raise Failure(f"cannot parse op body {body!r}")
    return sp.Op(kind, origin, role, seq, clock, author, b, stamps)


def parse_meaning(lines):
    """-> list of (name, type, {label: raw}, changeset-or-None) with changeset = (schema, n, [op lines])."""
    msgs = []
    cur = None
    for line in lines:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        text = line.strip()
        if depth == 0:
            m = re.fullmatch(r"([A-Z_]+) \(type 0x([0-9a-fA-F]{2})\)", text)
            if not m:
                raise Failure(f"cannot parse message line {text!r}")
            cur = {"name": m.group(1), "type": int(m.group(2), 16), "fields": [], "cs": None}
            msgs.append(cur)
        elif depth == 1:
            m = re.fullmatch(r"change set: schema (\d+), (\d+) ops?", text)
            if m:
                cur["cs"] = (int(m.group(1)), int(m.group(2)), [])
                continue
            m = re.fullmatch(r"([\w ]+?): (.*)", text)
            if not m:
                raise Failure(f"cannot parse field line {text!r}")
            cur["fields"].append((m.group(1), m.group(2)))
        else:
            if cur is None or cur["cs"] is None:
                raise Failure(f"op line outside a change set: {text!r}")
            cur["cs"][2].append(text)
    return msgs


def compare_meaning(vec, messages):
    """Returns the number of individual values compared."""
    parsed = parse_meaning(vec.meaning)
    if len(parsed) != len(messages):
        raise Failure(f"meaning lists {len(parsed)} messages, decoded {len(messages)}")
    compared = 0
    for i, (pm, msg) in enumerate(zip(parsed, messages)):
        where = f"message {i} ({pm['name']})"
        if pm["name"] != msg.NAME or pm["type"] != msg.TYPE:
            raise Failure(f"{where}: meaning says {pm['name']} 0x{pm['type']:02x}, "
                          f"decoded {msg.NAME} 0x{msg.TYPE:02x}")
        compared += 1
        labels = LABELS[msg.NAME]
        seen = set()
        for label, raw in pm["fields"]:
            if label not in labels:
                raise Failure(f"{where}: unknown field label {label!r}")
            attr, parser = labels[label]
            want = parser(raw)
            got = getattr(msg, attr)
            if got != want:
                raise Failure(f"{where}: {label} is {got!r}, meaning says {want!r}")
            seen.add(attr)
            compared += 1
        cs_attr = [a for a, k, _ in msg.FIELDS if k == sp.F_CHANGESET]
        if cs_attr:
            if pm["cs"] is None:
                raise Failure(f"{where}: meaning has no change set")
            cs = getattr(msg, cs_attr[0])
            schema, n, op_lines = pm["cs"]
            if cs.schema_version != schema or len(cs.ops) != n or len(op_lines) != n:
                raise Failure(f"{where}: change set schema {cs.schema_version}/{len(cs.ops)} ops, "
                              f"meaning says schema {schema}/{n} ops ({len(op_lines)} lines)")
            compared += 2
            for k, (line, op) in enumerate(zip(op_lines, cs.ops)):
                want = parse_op(line)
                if want != op:
                    raise Failure(f"{where}: op {k}:\n      decoded {op}\n      meaning {want}")
                compared += 1
            seen.add(cs_attr[0])
        # An appended field at its default is absent from the payload, and from the meaning.
        missing = [a for a, k, _ in msg.FIELDS if a not in seen
                   and not (k in sp.OPTIONAL_DEFAULTS and getattr(msg, a) == sp.OPTIONAL_DEFAULTS[k])]
        if missing:
            raise Failure(f"{where}: meaning does not show {missing}")
    return compared


# ------------------------------------------------------------------------------------------
# malformed vectors: expected error kind and details from the error: line
# ------------------------------------------------------------------------------------------

ERROR_PATTERNS = [
    (r"bad magic byte\(s\) ((?:[0-9a-f]{2} ?)+)", "bad_magic", lambda m, e: e.details["got"] == bytes.fromhex(m.group(1))),
    (r"bad checksum: frame says ([0-9a-f]{8}), computed ([0-9a-f]{8})", "bad_checksum",
     lambda m, e: e.details["said"] == int(m.group(1), 16) and e.details["computed"] == int(m.group(2), 16)),
    (r"frame payload of (\d+) bytes exceeds the limit of (\d+)", "frame_too_large",
     lambda m, e: e.details["length"] == int(m.group(1)) and e.details["limit"] == int(m.group(2))),
    (r"unsupported protocol version (\d+)", "unsupported_version", lambda m, e: e.details["version"] == int(m.group(1))),
    (r"unknown message type 0x([0-9a-f]{2})", "unknown_message_type", lambda m, e: e.details["type"] == int(m.group(1), 16)),
    (r"truncated (.+)", "truncated", None),
    (r"varint longer than 10 bytes.*? in (.+)", "varint_too_long", None),
    (r"string index (\d+) out of range \((?:table has|the dictionary and the new strings hold) (\d+)\)", "string_index_out_of_range",
     lambda m, e: e.details["index"] == int(m.group(1)) and e.details["count"] == int(m.group(2))),
    (r"string base (\d+) does not match the (\d+) strings", "string_base_mismatch",
     lambda m, e: e.details["base"] == int(m.group(1)) and e.details["held"] == int(m.group(2))),
    (r"invalid UTF-8 in (.+)", "invalid_utf8", None),
    # section 1, "Decoding errors": an enumeration, flag or range rule broken (*invalid value*)
    (r"invalid (.+?): (.+)", "bad_value", None),
]


def expected_error(text):
    for pat, kind, check in ERROR_PATTERNS:
        m = re.match(pat, text)
        if m:
            return kind, m, check
    raise Failure(f"cannot classify error line {text!r}")


def expected_error_offset(kind, data, err):
    """Where a streaming decoder must notice the error (byte count consumed), if the spec says."""
    if kind == "bad_magic":
        return len(err.details["got"])      # "checks each magic byte as it arrives"
    if kind in ("unsupported_version", "frame_too_large"):
        return sp.HEADER_SIZE               # "with 8 bytes"; too large: "without waiting for the payload"
    return len(data)                        # everything else needs the whole frame


# ------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------

class Stats:
    tags = 0
    vectors = 0
    frames = 0
    values = 0
    splits = 0
    selftests = 0
    failures: list[str] = []
    types: set = set()
    op_kinds: dict = {}
    value_types: dict = {}


def decode_file_frames(vec):
    """Decode the frames of a file in order: one direction of one connection, so their change
    sets share one string dictionary, empty at the start (section 11).  Frames of an ignorable
    type (0x80-0xFF) are skipped (section 4).  Returns (frame, message, the dictionary as it
    was before that frame) for each message, and the number of frames skipped."""
    receiver = sp.StringDictionary()
    decoded, skipped = [], 0
    for i, f in enumerate(frames_of(vec.data)):
        if SEALING["key"] is not None:
            want = sp.frame_tag(SEALING["key"], i, f)
            if f.tag != want:
                raise Failure(f"frame {i}: MAC {f.tag.hex()} does not verify (computed {want.hex()} for sequence {i})")
            Stats.tags += 1
        before = receiver.copy()
        msg = sp.decode_message(f, receiver)
        if isinstance(msg, sp.Ignored):
            skipped += 1
            continue
        decoded.append((f, msg, before))
    return decoded, skipped


def check_message_vector(vec):
    decoded, skipped = decode_file_frames(vec)
    frames = [f for f, _, _ in decoded]
    messages = [m for _, m, _ in decoded]
    canonical = "noncanonical" not in vec.sections
    for msg in messages:
        Stats.types.add(msg.TYPE)
        cs = getattr(msg, "change_set", None)
        for op in (cs.ops if cs else ()):
            Stats.op_kinds.setdefault(op.kind, set()).add(vec.name)
            if op.kind == sp.OP_WRITE:
                Stats.value_types.setdefault(op.body.value.type, set()).add(vec.name)
                if op.body.field not in sp.ENTITY_FIELDS[op.body.entity]:
                    NOTES.append(f"{vec.name}: write to {sp.ENTITIES[op.body.entity]}.{op.body.field}, a field "
                                 f"SPEC section 9 says receivers refuse (invalid_op)")
        if isinstance(msg, sp.Push) and len({op.origin for op in msg.change_set.ops}) > 1:
            NOTES.append(f"{vec.name}: one PUSH holds ops of origins "
                         f"{sorted({op.origin for op in msg.change_set.ops})}; SPEC sections 5/7/8 say a PUSH carries "
                         f"only the node's own ops (else permission_denied)")
    m = re.search(r"(\d+) (?:frames?|messages?), (\d+) bytes", " ".join(vec.comments))
    if m and (int(m.group(1)) != len(messages) or int(m.group(2)) != len(vec.data)):
        raise Failure(f"comment says {m.group(0)}, found {len(messages)} messages, {len(vec.data)} bytes")
    say(f"  {len(frames)} frame(s), {len(vec.data)} bytes; decoded:")
    rendered = []
    for msg in messages:
        rendered += sp.format_message(msg)
    for line in rendered:
        say("    " + line)
    for f, msg, before in decoded:
        cs = getattr(msg, "change_set", None)
        if cs is not None:
            say(f"    ({msg.NAME}: string_base {cs.string_base} of {len(before)} held, "
                f"{len(cs.new_strings)} new strings)")
    if rendered != vec.meaning:
        say("    (note: rendering differs textually from the file's meaning: section; values are compared below)")
    # every way of splitting the stream gives the same messages (one StreamDecoder, one dictionary)
    for label, chunks in split_variants(vec.data):
        got, err, _, left = feed_all(chunks)
        if err is not None:
            raise Failure(f"{label}: refused: {err}")
        if got != messages or left:
            raise Failure(f"{label}: decoded differently ({len(got)} messages, {left} bytes left)")
        Stats.splits += 1
    if canonical:
        check_canonical_stream(vec, decoded)
        what = "re-encoded byte-identical (dictionary carried across frames)"
    else:
        what = check_noncanonical_stream(vec, decoded, skipped)
    n = compare_meaning(vec, messages)
    Stats.values += n
    Stats.frames += len(frames)
    say(f"  {what}; {n} values match meaning:; {len(vec.data) + 1} split variants decode identically")
    return messages


def check_canonical_stream(vec, decoded):
    """Re-encode every message with one sender-side dictionary carried across the frames of the
    file: each frame must come out byte for byte, the sender's dictionary must equal the
    receiver's before every frame, and each re-encoded frame must decode back to its message."""
    sender = sp.StreamEncoder()
    receiver = sp.StringDictionary()  # decodes our own output, independently of the file
    out = bytearray()
    for i, (f, msg, before) in enumerate(decoded):
        if sender.dictionary != before:
            raise Failure(f"frame {i} ({msg.NAME}): sender dictionary {sender.dictionary} differs from the "
                          f"receiver's {before}")
        enc = sender.encode(msg, f.version)
        if SEALING["key"] is not None:
            plain = sp.Frame(f.version, msg.TYPE, enc[sp.HEADER_SIZE:-sp.CHECKSUM_SIZE])
            enc = sp.seal(SEALING["key"], i, plain).encode()
        if enc != f.encode() or enc != vec.data[len(out):len(out) + len(enc)]:
            raise Failure(f"re-encoding frame {i} ({msg.NAME}) differs:\n      file {f.encode().hex(' ')}\n"
                          f"      ours {enc.hex(' ')}")
        if sp.decode_message(frames_of(enc)[0], receiver) != msg:
            raise Failure(f"decode(encode({msg.NAME})) differs")
        out += enc
    if bytes(out) != vec.data:
        raise Failure("re-encoded stream differs from the file")
    if sender.dictionary != receiver:
        raise Failure("sender and receiver dictionaries differ at the end of the file")


def check_noncanonical_stream(vec, decoded, skipped):
    """Section 11: a noncanonical vector's bytes decode to its meaning but are not its canonical
    encoding, so it is not re-encoded byte for byte.  Checked instead: the canonical encoding of
    the whole message sequence decodes back to the same messages, and the label is justified (a
    frame was skipped, or some frame is not the canonical encoding on top of the dictionary the
    receiver held when it arrived)."""
    sender = sp.StreamEncoder()
    stream = b"".join(sender.encode(msg, f.version) for f, msg, _ in decoded)
    dec = sp.StreamDecoder()
    if dec.feed(stream) != [m for _, m, _ in decoded] or dec.buffered:
        raise Failure("the canonical encoding of the messages does not decode back to them")
    if dec.dictionary != sender.dictionary:
        raise Failure("sender and receiver dictionaries differ after the canonical re-encoding")
    differing = [i for i, (f, msg, before) in enumerate(decoded)
                 if sp.encode_message(msg, f.version, before.copy()) != f.encode()]
    if not differing and not skipped:
        raise Failure("marked noncanonical, but every frame is its canonical encoding")
    parts = []
    if skipped:
        parts.append(f"{skipped} ignorable frame(s) skipped")
    if differing:
        parts.append("frame(s) " + ", ".join(str(i) for i in differing) + " not canonical on top of the "
                     "dictionary they arrived with")
    return "noncanonical: " + "; ".join(parts) + "; canonical re-encoding decodes back to the same messages"


def check_malformed_vector(vec):
    kind, m, detail_check = expected_error(vec.error)
    say(f"  expected error kind: {kind}  ({vec.error})")
    data = vec.data
    first_err = None
    for label, chunks in split_variants(data):
        got, err, offset, _ = feed_all(chunks)
        if err is None:
            raise Failure(f"{label}: accepted ({len(got)} messages)")
        if got:
            raise Failure(f"{label}: yielded {len(got)} message(s) before refusing")
        if err.kind != kind:
            raise Failure(f"{label}: refused with {err.kind} ({err}), expected {kind}")
        if detail_check and not detail_check(m, err):
            raise Failure(f"{label}: details differ: ours {err!s} / file {vec.error}")
        if label == "byte-by-byte":
            want = expected_error_offset(kind, data, err)
            if offset != want:
                raise Failure(f"byte-by-byte: error noticed after {offset} bytes, expected after {want}")
        first_err = first_err or err
        Stats.splits += 1
    same_text = str(first_err) == vec.error
    say(f"  refused ({first_err.kind}) whole, byte by byte and at every split; "
        f"our message {'is identical' if same_text else 'differs'}: {first_err}")


SECRET = "xihu-node-secret"


def handshake(vectors):
    """Section 11: the hello and challenge vectors' payloads, secret "xihu-node-secret".
    Returns (keys, transcript, (node_to_hub, hub_to_node))."""
    (hello_frame,) = frames_of(vectors["hello"].data)
    (chal_frame,) = frames_of(vectors["challenge"].data)
    hello, chal = sp.decode_message(hello_frame), sp.decode_message(chal_frame)
    if chal.nonce != bytes(range(32)) or hello.nonce != bytes(range(0x20, 0x40)):
        raise Failure("challenge nonce is not 00..1f or hello nonce not 20..3f as section 11 says")
    if chal.hub_id != "hub-hz" or hello.node_id != "xihu" or chal.salt != bytes(range(0x40, 0x50)) or chal.iterations != 4096:
        raise Failure("challenge hub/salt/iterations or hello node differ from section 11")
    keys = sp.scram_keys(SECRET, chal.salt, chal.iterations)
    t = sp.transcript(hello_frame.payload, chal_frame.payload)
    return keys, t, sp.session_keys(keys.client_key, keys.server_key, t)


def check_auth(vectors, auth_msgs):
    """Section 6 and 11: AUTH's proof over the hello and challenge vectors' payloads."""
    keys, t, _ = handshake(vectors)
    proof = sp.auth_proof(keys, t)
    (auth,) = auth_msgs
    if auth.mac != proof:
        raise Failure(f"proof mismatch: vector {auth.mac.hex()}, computed {proof.hex()}")
    if sp.verify_proof(keys.stored_key, auth.mac, t) != keys.client_key:
        raise Failure("verify_proof refused the vector's proof")
    wrong = sp.scram_keys("not-the-secret", bytes(range(0x40, 0x50)), 4096)
    if sp.verify_proof(wrong.stored_key, auth.mac, t) is not None:
        raise Failure("verify_proof accepted the proof against another secret's stored key")
    if sp.verify_proof(keys.stored_key, auth.mac, t[:-1] + bytes([t[-1] ^ 1])) is not None:
        raise Failure("verify_proof accepted the proof over another transcript")
    say(f"  proof recomputed from the spec's inputs matches: {proof.hex()}")


# ------------------------------------------------------------------------------------------
# self tests beyond the vectors (encoder coverage, edge cases the vectors do not reach)
# ------------------------------------------------------------------------------------------

def _expect_error(kind, fn):
    try:
        fn()
    except sp.SiyuError as e:
        if e.kind != kind:
            raise Failure(f"expected {kind}, got {e.kind}: {e}")
        return e
    raise Failure(f"expected {kind}, got no error")


def random_op(rng, prev_clock):
    kind = rng.randrange(12)
    origin = rng.choice(["xihu", "总部"])
    s = lambda: rng.choice(["a", "b", "wm_lin", "总部", "", "x" * 64, "é\u4e2d"])  # noqa: E731
    stamps = ()
    if kind == 0:
        ent = rng.choice(list(sp.ENTITIES))
        vt = rng.randrange(6)
        val = {0: sp.Value.null(), 1: sp.Value.integer(rng.choice([0, -1, 1, -(1 << 63), (1 << 63) - 1, 300])),
               2: sp.Value.text(s()), 3: sp.Value.blob(bytes(rng.randrange(256) for _ in range(rng.randrange(4)))),
               4: sp.Value.boolean(False), 5: sp.Value.boolean(True)}[vt]
        body = sp.WriteBody(ent, s(), s() if ent in sp.ENTITIES_WITH_SUB else None, s(), val)
    elif kind in sp.PAIR_KINDS:
        body = sp.PairBody(s(), s())
    elif kind == 7:
        body = sp.StatusBody(s(), rng.randrange(7), rng.randrange(7))
    elif kind == 8:
        body = sp.PointsBody(s(), rng.choice([0, 1, -1, 120, -120, (1 << 63) - 1, -(1 << 63)]))
    elif kind == 9:
        body = sp.DeleteCustomerBody(s())
    elif kind == 10:
        body = sp.AcknowledgeBody(rng.randrange(1, 8), s(), s())
    else:
        body = sp.TagDeletionBody(rng.choice([3, 4]), s())
    millis = max(0, min((1 << 48) - 1, sp.hlc_millis(prev_clock) + rng.choice([0, 0, 1, -1, 1000, -(1 << 40), 1 << 40])))
    clock = (millis << 16) | rng.choice([0, 0, 1, 2, 65535])
    if kind not in sp.KINDS_WITHOUT_LIST and rng.random() < 0.6:
        # inline stamps, some of the op's own node (written with the own-origin bit)
        stamps = tuple(sp.Stamp(((rng.randrange(1 << 48)) << 16) | rng.choice([0, 7, 65535]),
                                origin if rng.random() < 0.4 else s())
                       for _ in range(rng.randrange(1, 4)))
    return sp.Op(kind, origin, rng.randrange(2), rng.choice([1, 2, 3, 41, (1 << 64) - 1]),
                 clock, rng.choice(["chenjing", "", "赵磊"]), body, stamps)


def random_message(rng):
    def cs():
        ops, clock = [], rng.randrange(1 << 64)
        for _ in range(rng.randrange(0, 6)):
            op = random_op(rng, clock)
            # sometimes make it a "next seq" successor of the previous op
            if ops and rng.random() < 0.5 and ops[-1].seq < (1 << 64) - 1:
                p = ops[-1]
                op = sp.Op(op.kind, p.origin, p.role, p.seq + 1, op.clock, op.author, op.body, op.stamps)
            # sometimes name earlier ops of the batch (written as back-references, section 9)
            if ops and op.stamps and rng.random() < 0.7:
                st = tuple(sp.op_stamp(rng.choice(ops)) if rng.random() < 0.6 else x for x in op.stamps)
                op = sp.Op(op.kind, op.origin, op.role, op.seq, op.clock, op.author, op.body, st)
            ops.append(op)
            clock = op.clock
        return sp.ChangeSet(rng.choice([0, 1, 2, 300]), ops)
    v = lambda: rng.choice([0, 1, 127, 128, 16383, 16384, (1 << 63), (1 << 64) - 1])  # noqa: E731
    b32 = lambda: bytes(rng.randrange(256) for _ in range(32))  # noqa: E731
    return rng.choice([
        lambda: sp.Hello("总部-杭州", rng.randrange(2), bytes([1, 2]), v()),
        lambda: sp.Challenge(rng.randrange(256), "hub-hz", b32()),
        lambda: sp.Auth(b32()),
        lambda: sp.Welcome(v(), v(), v()),
        lambda: sp.Push(cs()),
        lambda: sp.PushAck(v()),
        lambda: sp.Pull(v(), v()),
        lambda: sp.Changes(v(), rng.random() < 0.5, cs()),
        lambda: sp.SnapshotBegin(v(), v(), rng.randrange(3)),
        lambda: sp.SnapshotChunk(v(), v(), cs()),
        lambda: sp.SnapshotEnd(v(), v(), b32()),
        lambda: sp.Ping(v()), lambda: sp.Pong(v()),
        lambda: sp.Error(rng.randrange(1, 16), rng.random() < 0.5, "über 'x'"),
        lambda: sp.Bye(""),
    ])()


def self_tests():
    def t(name, fn):
        try:
            fn()
            Stats.selftests += 1
        except Exception as e:  # noqa: BLE001
            Stats.failures.append(f"self-test {name}: {e}")
            print(f"FAIL self-test {name}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc()

    def crc():
        if sp.crc32c(b"123456789") != 0xE3069283 or sp.crc32c_bitwise(b"123456789") != 0xE3069283:
            raise Failure("CRC-32C check value")
        data = bytes(range(256)) * 3
        if sp.crc32c(data) != sp.crc32c_bitwise(data) or sp.crc32c(data[100:], sp.crc32c(data[:100])) != sp.crc32c(data):
            raise Failure("CRC table / incremental")
    t("crc32c", crc)

    def varints():
        for n, enc in [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"),
                       ((1 << 64) - 1, "ffffffffffffffffff01"), (1 << 63, "80808080808080808001")]:
            if sp.encode_varint(n).hex() != enc or sp.Reader(bytes.fromhex(enc), "").varint("x") != n:
                raise Failure(f"varint {n}")
        for z, n in [(0, 0), (1, -1), (2, 1), (3, -2), ((1 << 64) - 1, -(1 << 63)), ((1 << 64) - 2, (1 << 63) - 1)]:
            if sp.zigzag(n) != z or sp.unzigzag(z) != n:
                raise Failure(f"zigzag {n}")
        _expect_error("varint_too_long", lambda: sp.Reader(bytes.fromhex("ffffffffffffffffff02"), "").varint("x"))
        _expect_error("varint_too_long", lambda: sp.Reader(bytes.fromhex("ffffffffffffffffff81"), "").varint("x"))
        _expect_error("truncated", lambda: sp.Reader(bytes.fromhex("ffff"), "").varint("x"))
        _expect_error("encode", lambda: sp.encode_varint(1 << 64))
    t("varints", varints)

    def framing():
        ping = sp.encode_message(sp.Ping(1))
        _expect_error("bad_magic", lambda: sp.FrameDecoder().feed(b"S\x00"))
        _expect_error("frame_too_large", lambda: sp.FrameDecoder().feed(b"SY\x01\x30\xff\xff\xff\xff"))
        d = sp.FrameDecoder()
        if d.feed(ping[:-1]) != [] or len(d.feed(ping[-1:] + ping + ping[:3])) != 2 or d.buffered != 3:
            raise Failure("streaming across frames")
        _expect_error("truncated", d.eof)
        # exactly 1 MiB is allowed, and the encoder refuses more
        big = sp.encode_frame(0x90, bytes(sp.MAX_PAYLOAD))
        if len(big) != sp.MAX_FRAME or len(sp.FrameDecoder().feed(big)) != 1:
            raise Failure("1 MiB frame")
        _expect_error("encode", lambda: sp.encode_frame(0x90, bytes(sp.MAX_PAYLOAD + 1)))
        # ignorable type skipped, unknown low type refused, trailing payload bytes ignored
        s = sp.StreamDecoder()
        if s.feed(sp.encode_frame(0x80, b"whatever") + ping) != [sp.Ping(1)]:
            raise Failure("ignorable frame not skipped")
        _expect_error("unknown_message_type", lambda: sp.StreamDecoder().feed(sp.encode_frame(0x05, b"")))
        if sp.decode_payload(0x30, b"\x05extra") != sp.Ping(5):
            raise Failure("trailing bytes not ignored")
        # HELLO is always sent as a version 1 frame
        if sp.encode_message(sp.Hello("x", 1, b"\x01\x02", 1), version=2)[2] != 1:
            raise Failure("HELLO not in a version-1 frame")
    t("framing", framing)

    def refusals():
        P = lambda hexs: sp.decode_payload(0x10, bytes.fromhex(hexs))  # noqa: E731
        A = "01 00 01 00 01 61"  # schema 1, string_base 0, one new string: p 0, "a"
        # header flags on the first op, next seq without same origin, list on points, reserved kind
        _expect_error("bad_value", lambda: P(f"{A} 00 01 a8 00 00 01 00 00 02"))
        _expect_error("bad_value", lambda: P(f"{A} 00 02 08 00 00 01 00 00 00 02 48 00 00 00 02"))
        _expect_error("bad_value", lambda: P(f"{A} 00 01 18 00 00 01 00 00 00 02 00 00"))
        _expect_error("bad_value", lambda: P(f"{A} 00 01 0c 00 00 01 00 00"))
        _expect_error("bad_value", lambda: P(f"{A} 00 01 09 00 02 01 00 00 00"))   # role 2
        _expect_error("bad_value", lambda: P(f"{A} 00 01 09 00 00 00 00 00 00"))   # seq 0
        _expect_error("bad_value", lambda: P(f"{A} 00 01 09 00 00 01 01 00 00 00"))  # logical 0
        _expect_error("bad_value", lambda: P(f"{A} 00 01 09 00 00 01 02 00 00"))  # millis -1
        _expect_error("truncated", lambda: P("01 00 05 00 01 61"))                # 5 strings, 3 bytes
        _expect_error("truncated", lambda: P("01 00 00 00 ff ff 03"))             # op count vs bytes
        _expect_error("bad_value", lambda: sp.decode_payload(0x13, bytes.fromhex("00 02 01 00 00 00 00")))  # bool 2
        _expect_error("invalid_utf8", lambda: sp.decode_payload(0x3f, bytes.fromhex("03 ed a0 80")))  # surrogate
        _expect_error("invalid_utf8", lambda: sp.decode_payload(0x3f, bytes.fromhex("02 c0 80")))     # overlong
        # valid but not canonical: base_clock other than the first op's clock (only its millis
        # enter), zero-padded varints; canonical re-encoding fixes both
        cs = P(f"{A} 05 01 09 00 00 81 00 00 00 00").change_set
        if cs.ops[0].clock != 0 or cs.ops[0].seq != 1:
            raise Failure(f"base_clock 5 / padded seq: {cs.ops}")
        if sp.encode_change_set(cs).hex(" ") != f"{A} 00 01 09 00 00 01 00 00 00":
            raise Failure(f"canonical re-encoding: {sp.encode_change_set(cs).hex(' ')}")
    t("refusals", refusals)

    def front_coding():
        """Section 9, "A new string", and section 1 (k = 2 for new strings)."""
        P = lambda hexs: sp.decode_payload(0x10, bytes.fromhex(hexs)).change_set  # noqa: E731
        # 部 = e9 83 a8, 郎 = e9 83 8e: the shared prefix ends inside a character
        cs = P("01 00 02 00 03 e9 83 a8 02 01 8e 00 00")
        if cs.new_strings != ("部", "郎"):
            raise Failure(f"split inside a character: {cs.new_strings}")
        D = sp.DeleteCustomerBody
        ops = [sp.Op(9, "部", 0, 1, 0, "郎", D("wm_lin")), sp.Op(9, "部", 0, 2, 0, "郎", D("wm_li"))]
        want = ("01 00 04 00 03 e9 83 a8 02 01 8e 00 06 77 6d 5f 6c 69 6e 05 00 00 02 "
                "09 00 00 01 00 01 02 e9 00 03")
        enc = sp.encode_change_set(sp.ChangeSet(1, ops)).hex(" ")
        if enc != want:
            raise Failure(f"canonical p (longest shared prefix, also a whole string): {enc}, want {want}")
        _expect_error("bad_value", lambda: P("01 00 02 00 01 61 02 01 62 00 00"))   # p 2 > len("a")
        _expect_error("bad_value", lambda: P("01 00 01 01 01 61 00 00"))            # first p > 0 (ASSUMPTION)
        _expect_error("invalid_utf8", lambda: P("01 00 02 00 03 e9 83 a8 01 01 41 00 00"))  # e9 41
        _expect_error("truncated", lambda: P("01 00 01 00 05 61"))                  # rest longer than payload
        e = _expect_error("truncated", lambda: P("01 00 03 00 00 00 00"))           # 3 x 2 bytes > 4 left
        if "3 items need at least 6 bytes" not in str(e):
            raise Failure(f"k = 2 for new strings: {e}")
        # 1 MiB of new strings in all, shared bytes counted: 16 x 64 KiB is accepted, 17 are not
        first = "00 " + sp.encode_bytes(b"a" * 65536).hex(" ")
        big = lambda n: P(f"01 00 {sp.encode_varint(n).hex(' ')} {first} " + "80 80 04 00 " * (n - 1) + "00 00")  # noqa: E731
        if len(big(16).new_strings) != 16:
            raise Failure("16 x 64 KiB new strings")
        _expect_error("bad_value", lambda: big(17))
    t("front-coded new strings", front_coding)

    def dictionary():
        """Section 9, "The string dictionary", and the canonical string_base."""
        def dec(d, hexs):
            return sp.decode_payload(0x10, bytes.fromhex(hexs), d).change_set
        d = sp.StringDictionary()
        dec(d, "01 00 02 00 01 61 00 01 62 00 00")
        e = _expect_error("string_base_mismatch", lambda: dec(d, "01 01 00 00 00"))
        if e.details != {"base": 1, "held": 2}:
            raise Failure(f"mismatch details {e.details}")
        cs = dec(d, "01 02 01 00 01 63 00 01 09 02 01 01 00 01 00")     # base 2: a b + c
        if cs.ops[0].origin != "c" or cs.ops[0].author != "b" or d.strings != ["a", "b", "c"]:
            raise Failure(f"building on the dictionary: {cs.ops} / {d.strings}")
        # a frame that fails to decode leaves the dictionary unchanged
        _expect_error("string_index_out_of_range", lambda: dec(d, "01 03 01 00 01 64 00 01 09 04 01 01 00 00 00"))
        if d.strings != ["a", "b", "c"]:
            raise Failure(f"a failed frame changed the dictionary: {d.strings}")
        # repeated and already-held strings take further places; base 0 starts afresh
        dec(d, "01 03 02 00 01 61 01 00 00 00")
        if d.strings != ["a", "b", "c", "a", "a"]:
            raise Failure(f"repeated strings: {d.strings}")
        if not sp.encode_change_set(sp.ChangeSet(1, [sp.Op(9, "a", 1, 1, 0, "a", sp.DeleteCustomerBody("a"))]),
                                    d.copy()).startswith(bytes.fromhex("01 05 00 00 01 09 00 01 01 00 00 00")):
            raise Failure("a string held twice is named by its first place")
        dec(d, "01 00 01 00 01 7a 00 00")
        if d.strings != ["z"]:
            raise Failure(f"string_base 0 does not start afresh: {d.strings}")
        # decoder: 16,384 strings are kept, 16,385 empty the dictionary; the same for 524,288 bytes
        many = lambda n: f"01 00 {sp.encode_varint(n).hex(' ')} " + "00 01 78 " * n + "00 00"  # noqa: E731
        for n, kept in ((16384, 16384), (16385, 0)):
            d = sp.StringDictionary()
            dec(d, many(n))
            if len(d) != kept:
                raise Failure(f"{n} strings: dictionary holds {len(d)}")
        first = "00 " + sp.encode_bytes(b"a" * 65536).hex(" ")
        for extra, kept in (("", 8), ("00 01 62 ", 0)):
            d = sp.StringDictionary()
            n = 8 + bool(extra)
            dec(d, f"01 00 {n:02x} {first} " + "80 80 04 00 " * 7 + extra + "00 00")
            if len(d) != kept:
                raise Failure(f"{n} strings of {d.size} bytes: dictionary holds {len(d)}")
        # encoder: string_base 0 (and every string used is new) when the dictionary would overflow
        def push(*customers):
            return sp.ChangeSet(1, [sp.Op(9, "n", 1, i + 1, 0, "n", sp.DeleteCustomerBody(c))
                                    for i, c in enumerate(customers)])

        def sync(d, cs, want_base, want_new):
            before = d.copy()
            enc = sp.encode_change_set(cs, d)
            got = sp.decode_change_set(sp.Reader(enc, ""), before)
            if got[0] != cs or got[0].string_base != want_base or list(got[0].new_strings) != want_new:
                raise Failure(f"string_base {got[0].string_base} / {got[0].new_strings}, "
                              f"want {want_base} / {want_new}")
            before.adopt(got[1])
            if before != d:
                raise Failure("sender and receiver dictionaries differ")
            return enc
        d = sp.StringDictionary(["n"] + [f"s{i}" for i in range(16382)])
        sync(d, push("s7", "c1"), 16383, ["c1"])            # 16,384 strings: kept
        sync(d, push("s7"), 16384, [])
        enc = sync(d, push("c2", "s7"), 0, ["n", "c2", "s7"])  # 16,385 would be over
        if enc.hex(" ") != "01 00 03 00 01 6e 00 02 63 32 00 02 73 37 00 02 09 00 01 01 00 00 01 e9 00 02":
            raise Failure(f"fresh start: {enc.hex(' ')}")
        d = sp.StringDictionary(["a" * 524287])
        sync(d, push("n"), 1, ["n"])                         # 524,288 bytes: kept
        sync(d, push("c"), 0, ["n", "c"])
        # the encoder refuses more than 1 MiB of new strings, and a frame that cannot be made
        # leaves the dictionary unchanged
        d = sp.StringDictionary(["x"])
        W = lambda v: sp.Op(0, "n", 1, 1, 0, "n", sp.WriteBody(3, "c", None, "name", v))  # noqa: E731
        _expect_error("encode", lambda: sp.encode_change_set(
            sp.ChangeSet(1, [W(sp.Value.text("a" * 600000)), W(sp.Value.text("b" * 600000))]), d))
        _expect_error("encode", lambda: sp.encode_message(sp.Push(sp.ChangeSet(1, [W(sp.Value.blob(bytes(1 << 20)))])),
                                                          dictionary=d))
        if d.strings != ["x"]:
            raise Failure(f"a refused encoding changed the dictionary: {d.strings}")
    t("string dictionary", dictionary)

    def stamp_lists():
        """Section 9, "Stamps in a list": more-follows bit, back-references, own-origin stamps."""
        P = lambda hexs: sp.decode_payload(0x10, bytes.fromhex(hexs)).change_set  # noqa: E731
        # op 0: delete "a" at clock 0; op 1: delete "a" with every flag and a stamp list
        head = "01 00 01 00 01 61 00 02 09 00 00 01 00 00 00 f9 00 00"
        s0 = sp.Stamp(0, "a")
        # back-reference d = 1 (v = 6), zero-padded, twice (v = 7: more follows); inline own
        # origin (v = 4); inline with the node's index (v = 0, index 0)
        for tail, n in (("06", 1), ("86 00", 1), ("07 06", 2), ("04", 1), ("00 00", 1), ("01 00 05 06", 3)):
            cs = P(f"{head} {tail}")
            if cs.ops[1].stamps != (s0,) * n:
                raise Failure(f"stamps {tail}: {cs.ops[1].stamps}")
            if tail in ("04", "00 00") and sp.encode_change_set(cs).hex(" ") != f"{head} 06":
                raise Failure(f"canonical re-encoding of inline stamp {tail} naming op 0")
        _expect_error("truncated", lambda: P(f"{head} 07 07"))                # the last stamp never comes
        # d = 0, d beyond the ops before, a back-reference in the first op, d of 62 bits
        _expect_error("bad_value", lambda: P(f"{head} 02"))
        _expect_error("bad_value", lambda: P(f"{head} 0a"))
        _expect_error("bad_value", lambda: P("01 00 01 00 01 61 00 01 19 00 00 01 00 00 00 06"))
        _expect_error("bad_value", lambda: P(f"{head} fe ff ff ff ff ff ff ff ff 01"))
        _expect_error("string_index_out_of_range", lambda: P(f"{head} 00 07"))
        # inline: clock value v >> 3 (+5 ms, logical 3 follows), then node "b" by index
        two = "01 00 02 00 01 61 00 01 62 00 02 09 00 00 01 00 00 00 f9 00 00 a8 01 03 01"
        cs = P(two)
        if cs.ops[1].stamps != (sp.Stamp(sp.hlc(5, 3), "b"),) or sp.encode_change_set(cs).hex(" ") != two:
            raise Failure(f"inline stamp with logical counter: {cs.ops[1].stamps}")
        _expect_error("bad_value", lambda: P(two[:-5] + "00 01"))            # logical 0
        # canonical: nearest back-reference (op 0 and op 1 of another role share the stamp
        # (0, "a")), own-origin inline stamp with a logical counter, more-follows bits
        D = sp.DeleteCustomerBody("a")
        cs = sp.ChangeSet(1, [sp.Op(9, "a", 0, 1, 0, "a", D), sp.Op(9, "a", 1, 1, 0, "a", D),
                              sp.Op(9, "a", 1, 2, 0, "a", D, (s0, sp.Stamp(1, "a"), s0))])
        enc = sp.encode_change_set(cs)
        want = "01 00 01 00 01 61 00 03 09 00 00 01 00 00 00 89 00 01 01 00 00 f9 00 00 07 0d 01 06"
        if enc.hex(" ") != want:
            raise Failure(f"nearest back-reference: {enc.hex(' ')}, want {want}")
        if sp.decode_change_set(sp.Reader(enc, ""))[0].ops != cs.ops:
            raise Failure("nearest back-reference does not decode back")
        # canonical string order counts only stamp nodes written as an index
        cs = sp.ChangeSet(1, [sp.Op(9, "a", 0, 1, 0, "a", D),
                              sp.Op(9, "b", 0, 1, 0, "b", sp.DeleteCustomerBody("c"),
                                    (s0, sp.Stamp(0, "b"), sp.Stamp(0, "d")))])
        if sp.decode_change_set(sp.Reader(sp.encode_change_set(cs), ""))[0].new_strings != ("a", "b", "c", "d"):
            raise Failure("canonical order of first use with stamp nodes")
    t("stamp lists", stamp_lists)

    def roundtrip():
        """Random messages through one direction of a connection: a sender's dictionary, the
        bytes fed in random pieces to a receiver's, and the receiver's messages re-encoded."""
        rng = random.Random(20240601)
        sender, receiver, again = sp.StreamEncoder(), sp.StreamDecoder(), sp.StreamEncoder()
        msgs = [random_message(rng) for _ in range(400)]
        stream = b"".join(sender.encode(m) for m in msgs)
        got, pos = [], 0
        while pos < len(stream):
            n = rng.randrange(1, 300)
            got += receiver.feed(stream[pos:pos + n])
            pos += n
        for i, (m, g) in enumerate(zip(msgs, got)):
            if m != g:
                raise Failure(f"round trip #{i}: {m} -> {g}")
        if len(got) != len(msgs) or receiver.buffered:
            raise Failure(f"round trip: {len(got)} of {len(msgs)} messages")
        if b"".join(again.encode(m) for m in got) != stream:
            raise Failure("re-encoding the decoded messages differs")
        if not sender.dictionary == receiver.dictionary == again.dictionary or not len(sender.dictionary):
            raise Failure("dictionaries differ (or stayed empty)")
    t("random round trip (400 messages, one dictionary)", roundtrip)


# ------------------------------------------------------------------------------------------

STATE_DIGEST_FILE = os.path.join(os.path.dirname(VECTOR_DIR), "state-digest.txt")


def check_state_digest() -> list[str]:
    """Serializes the rows of Protocol/state-digest.txt by SPEC section 7 ("The state digest, byte
    for byte") and compares the SHA-256 with the file's digest line. Returns failures."""
    import hashlib
    if not os.path.exists(STATE_DIGEST_FILE):
        return [f"{STATE_DIGEST_FILE} is missing"]
    out = bytearray()
    sources: list[tuple[str, list[bytes]]] = []
    want = None
    for raw in open(STATE_DIGEST_FILE, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        if line.startswith("source "):
            sources.append((line[len("source "):], []))
        elif line.startswith("  row "):
            row = bytearray()
            values = line[len("  row "):].split(" | ")
            row += sp.encode_varint(len(values))
            for v in values:
                if v == "null":
                    row.append(0)
                elif v.startswith('"') and v.endswith('"'):
                    row.append(3)
                    row += sp.encode_string(v[1:-1])
                else:
                    n = int(v)
                    row.append(1)
                    row += sp.encode_varint(((n << 1) ^ (n >> 63)) & (2**64 - 1))   # svarint: zigzag
            sources[-1][1].append(bytes(row))
        elif line.startswith("digest "):
            want = line[len("digest "):]
    for name, rows in sources:
        out += sp.encode_string(name)
        for row in rows:
            out += row
        out.append(0xFF)
        out += sp.encode_varint(len(rows))
    got = hashlib.sha256(bytes(out)).hexdigest()
    names = [name for name, _ in sources]
    expected_names = ["stores", "staff", "customers", "follow_relations", "tag_groups", "tags", "customer_tags",
                      "group_chats", "group_members", "orders", "order_lines", "points", "conflicts"]
    failures = []
    if names != expected_names:
        failures.append(f"state-digest: sources {names}, SPEC section 7 lists {expected_names}")
    if got != want:
        failures.append(f"state-digest: the rows serialize to SHA-256 {got}, the file says {want}")
    print(f"state-digest: {len(sources)} sources, {sum(len(r) for _, r in sources)} rows: "
          + ("PASS" if not failures else "FAIL"))
    return failures


def main():
    paths = sorted(glob.glob(os.path.join(VECTOR_DIR, "*.vec")))
    if not paths:
        print(f"no vectors in {VECTOR_DIR}")
        return 1
    vectors = {}
    for p in paths:
        name = os.path.basename(p)[:-4]
        try:
            vectors[name] = Vector(p)
        except Exception as e:  # noqa: BLE001
            Stats.failures.append(f"{name}: {e}")
            print(f"FAIL {name}: {e}")
    try:
        directions = dict(zip(("node to hub", "hub to node"), handshake(vectors)[2]))
    except Exception as e:  # noqa: BLE001
        directions = {}
        Stats.failures.append(f"handshake: {e}")
        print(f"FAIL handshake: {e}")
    for name, vec in vectors.items():
        Stats.vectors += 1
        say(f"== {name}: {vec.comments[0].split(':', 1)[1].strip()}")
        try:
            SEALING["key"] = None
            if "sealed" in vec.sections:
                direction = " ".join(vec.sections["sealed"]).strip()
                if direction not in directions:
                    raise Failure(f"sealed: names {direction!r}, not 'node to hub' or 'hub to node'")
                SEALING["key"] = directions[direction]
                say(f"  sealed under {direction} (sequence numbers from 0)")
            if vec.meaning is not None:
                msgs = check_message_vector(vec)
                if name == "auth":
                    check_auth(vectors, [m for m in msgs if isinstance(m, sp.Auth)])
            else:
                check_malformed_vector(vec)
            say("  PASS")
        except Exception as e:  # noqa: BLE001
            Stats.failures.append(f"{name}: {e}")
            print(f"FAIL {name}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc()
    missing = set(sp.MESSAGE_CLASSES) - Stats.types
    if missing:
        msg = "message types without a vector: " + ", ".join(sp.MESSAGE_CLASSES[t].NAME for t in sorted(missing))
        Stats.failures.append(msg)
        print("FAIL " + msg)
    if "auth" not in vectors:
        Stats.failures.append("no auth vector")
    # coverage notes (section 11 promises "one op of every kind and every value type")
    every = "push-every-op-kind"
    for k in sorted(sp.OP_KIND_NAMES):
        where = Stats.op_kinds.get(k, set())
        if every not in where:
            NOTES.append(f"op kind {k} ({sp.OP_KIND_NAMES[k]}) is not in {every}"
                         + (f" (only in {', '.join(sorted(where))})" if where else " nor in any vector"))
    for t, tname in [(0, "null"), (1, "integer"), (2, "text"), (3, "bytes"), (4, "false"), (5, "true")]:
        where = Stats.value_types.get(t, set())
        if every not in where:
            NOTES.append(f"value type {t} ({tname}) is not in {every}"
                         + (f" (only in {', '.join(sorted(where))})" if where else " nor in any vector"))
    self_tests()
    Stats.failures.extend(check_state_digest())
    for n in sorted(set(NOTES)):
        print(f"note: {n}")
    SEALING["key"] = None
    print(f"{Stats.vectors} vectors checked, {Stats.tags} frame MACs verified, {Stats.frames} frames decoded, {Stats.values} meaning values compared, "
          f"{Stats.splits} split variants, {Stats.selftests} self-tests, {len(Stats.failures)} failures")
    for f in Stats.failures:
        print("  - " + f.splitlines()[0])
    return 0 if not Stats.failures else 1


if __name__ == "__main__":
    sys.exit(main())
