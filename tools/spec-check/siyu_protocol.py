"""Independent implementation of the Siyu sync protocol, version 1.

Written from ``Protocol/SPEC.md`` (and the golden vectors) only; no other part of the
repository was consulted.  Python 3.11 standard library only.

Layers
------
* primitives: varint / svarint (zigzag) / CRC-32C (table driven, written here)
* frames:     ``FrameDecoder`` (streaming: feed arbitrary chunks) and ``encode_frame``
* messages:   one dataclass per message type, ``decode_message`` / ``encode_message``,
              ``StreamDecoder`` (frames + messages + the direction's string dictionary,
              skips ignorable types 0x80-0xFF), ``StreamEncoder`` (the sender's side)
* change sets: the per-connection, per-direction ``StringDictionary``, front-coded new
              strings, op headers, relative hybrid-logical clocks, stamp lists (count-free:
              a "more follows" bit; inline stamps, own-origin stamps and back-references
              to earlier ops of the change set), values, entities;
              ``decode_change_set`` / ``encode_change_set`` (canonical form)
* auth:       ``compute_auth_mac`` / ``verify_auth_mac`` (HMAC-SHA256, section 6)
* text:       ``format_message`` renders a readable decoding in the style of the vectors

Where the spec is silent or ambiguous, the choice made here is marked ``ASSUMPTION``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import ClassVar, Iterable, Optional, Union

# --------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------

PROTOCOL_VERSION = 1                 # the frame version HELLO and CHALLENGE always use (section 4)
SESSION_VERSION = 2                  # the version this client offers and speaks after CHALLENGE
SUPPORTED_VERSIONS = frozenset({1, 2})   # frame versions a decoder accepts
TAG_SIZE = 16                        # a sealed frame's MAC (section 3, "Sealed frames")
MAGIC = b"SY"
HEADER_SIZE = 8
CHECKSUM_SIZE = 4
MAX_PAYLOAD = 1_048_576
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CHECKSUM_SIZE  # 1,048,588
U64_MAX = (1 << 64) - 1
MILLIS_LIMIT = 1 << 48
LOGICAL_MAX = 0xFFFF
FIXED32 = 32

# section 8 error codes
ERROR_CODES = {
    1: "malformed_frame",
    2: "bad_checksum",
    3: "frame_too_large",
    4: "unsupported_version",
    5: "auth_failed",
    6: "unknown_node",
    7: "schema_unsupported",
    8: "permission_denied",
    9: "clock_skew",
    10: "unexpected_message",
    11: "unknown_message_type",
    12: "busy",
    13: "cursor_too_old",
    14: "invalid_op",
    15: "internal_error",
}
ERROR_CODE_BY_NAME = {v: k for k, v in ERROR_CODES.items()}
ERROR_RETRYABLE = {2, 9, 12, 13, 15}

ROLES = {0: "hq", 1: "store"}
SNAPSHOT_REASONS = {0: "bootstrap", 1: "scope_change", 2: "cursor_too_old"}

# op kinds (section 9)
OP_WRITE = 0
OP_ADD_TAG = 1
OP_REMOVE_TAG = 2
OP_ADD_MEMBER = 3
OP_REMOVE_MEMBER = 4
OP_ADD_LINE = 5
OP_REMOVE_LINE = 6
OP_STATUS = 7
OP_POINTS = 8
OP_DELETE_CUSTOMER = 9
OP_ACKNOWLEDGE = 10
OP_TAG_DELETION = 11
OP_KIND_NAMES = {
    0: "write", 1: "add tag", 2: "remove tag", 3: "add member", 4: "remove member",
    5: "add line", 6: "remove line", 7: "status", 8: "points", 9: "delete customer",
    10: "acknowledge", 11: "tag deletion",
}
PAIR_KINDS = {1, 2, 3, 4, 5, 6}
KINDS_WITHOUT_LIST = {OP_POINTS, OP_ACKNOWLEDGE}

# op header bits
H_KIND_MASK = 0x0F
H_LIST = 0x10
H_SAME_ORIGIN = 0x20
H_NEXT_SEQ = 0x40
H_SAME_AUTHOR = 0x80

# values
V_NULL, V_INT, V_TEXT, V_BYTES, V_FALSE, V_TRUE = 0, 1, 2, 3, 4, 5
VALUE_TYPE_NAMES = {0: "null", 1: "int", 2: "text", 3: "bytes", 4: "bool", 5: "bool"}

ENTITIES = {
    1: "store", 2: "staff", 3: "customer", 4: "follow_relation", 5: "tag_group", 6: "tag",
    7: "customer_tag", 8: "group_chat", 9: "group_member", 10: "order", 11: "order_line",
    12: "points",
}
ENTITY_BY_NAME = {v: k for k, v in ENTITIES.items()}
ENTITIES_WITH_SUB = {4, 7, 9, 11}
# fields a write may name (enforced by receivers as invalid_op, NOT by the codec)
ENTITY_FIELDS = {
    1: {"name", "region"},
    2: {"name", "store_id"},
    3: {"name", "gender", "phone", "unionid", "owner_store", "owner_staff"},
    4: {"remark", "description", "add_way", "createtime", "state"},
    5: {"name", "sort_order", "exclusive", "deleted"},
    6: {"group_id", "name", "sort_order", "deleted"},
    7: set(),
    8: {"name", "owner", "notice", "capacity"},
    9: {"member_type", "join_time", "join_scene", "invitor", "nickname"},
    10: {"customer_id", "store_id", "staff_id", "address", "note"},
    11: {"sku", "qty", "unit_price_cents"},
    12: set(),
}
INSTANCE_KINDS = {1: "store", 2: "staff", 3: "tag_group", 4: "tag", 5: "customer", 6: "group_chat", 7: "order"}
INSTANCE_KIND_BY_NAME = {v: k for k, v in INSTANCE_KINDS.items()}
ORDER_STATUSES = {0: "draft", 1: "placed", 2: "paid", 3: "fulfilled", 4: "completed", 5: "cancelled", 6: "refunded"}
ORDER_STATUS_BY_NAME = {v: k for k, v in ORDER_STATUSES.items()}
# entity of the (container, member) pair named by add/remove ops
PAIR_ENTITY = {1: 7, 2: 7, 3: 9, 4: 9, 5: 11, 6: 11}

# minimum encoded sizes, for the "count n of items each at least k bytes" rule (section 1)
MIN_NEW_STRING_SIZE = 2  # section 1: k = 2 (varint p, then the length varint of the rest)
MIN_OP_SIZE = 3          # header + clock + 1-byte body (delete customer with every flag set)

# string limits (sections 9 and 10)
NEW_STRINGS_MAX_BYTES = 1_048_576  # the new strings of one change set, shared bytes counted
DICTIONARY_MAX_STRINGS = 16_384    # a dictionary over either limit is emptied
DICTIONARY_MAX_BYTES = 524_288

# stamp varint bits (section 9, "Stamps in a list")
S_MORE = 0x1        # another stamp follows in the list
S_BACKREF = 0x2     # back-reference: d = v >> 2
S_OWN_ORIGIN = 0x4  # inline stamp whose node is the op's origin (clock value = v >> 3)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

class SiyuError(Exception):
    """Any refusal by the decoder (or misuse of the encoder)."""

    kind = "error"
    #: the ERROR code (section 8) a receiver would send for it
    error_code = 1

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details
        #: frames/messages fully decoded in the same feed() call before the error
        self.decoded_before: list = []


class BadMagic(SiyuError):
    kind = "bad_magic"
    error_code = 1  # ASSUMPTION: section 8 has no code for a non-Siyu stream


class BadChecksum(SiyuError):
    kind = "bad_checksum"
    error_code = 2


class FrameTooLarge(SiyuError):
    kind = "frame_too_large"
    error_code = 3


class UnsupportedVersion(SiyuError):
    kind = "unsupported_version"
    error_code = 4


class UnknownMessageType(SiyuError):
    kind = "unknown_message_type"
    error_code = 11


class Truncated(SiyuError):
    kind = "truncated"


class VarintTooLong(SiyuError):
    kind = "varint_too_long"


class StringIndexOutOfRange(SiyuError):
    kind = "string_index_out_of_range"


class StringBaseMismatch(SiyuError):
    kind = "string_base_mismatch"


class InvalidUtf8(SiyuError):
    kind = "invalid_utf8"


class BadValue(SiyuError):
    """Bad enum value, bool not 0/1, forbidden flag combination, value out of range."""

    kind = "bad_value"


class EncodeError(SiyuError):
    """The encoder was given something that has no valid encoding."""

    kind = "encode"


# --------------------------------------------------------------------------------------------
# primitives
# --------------------------------------------------------------------------------------------

def _make_crc32c_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # reflected 0x1EDC6F41
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: Union[bytes, bytearray, memoryview], crc: int = 0) -> int:
    """CRC-32C (Castagnoli), reflected, init/xorout 0xFFFFFFFF. ``crc`` continues a previous CRC."""
    c = crc ^ 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32c_bitwise(data: bytes) -> int:
    """Bit-by-bit reference (used to cross-check the table)."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def encode_varint(n: int) -> bytes:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > U64_MAX:
        raise EncodeError(f"varint out of range: {n!r}")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n: int) -> int:
    if not isinstance(n, int) or n < -(1 << 63) or n >= (1 << 63):
        raise EncodeError(f"svarint out of signed 64-bit range: {n!r}")
    return ((n << 1) ^ (n >> 63)) & U64_MAX


def unzigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def encode_svarint(n: int) -> bytes:
    return encode_varint(zigzag(n))


def encode_string(s: str) -> bytes:
    raw = s.encode("utf-8")  # a str with lone surrogates raises here: no valid encoding
    return encode_varint(len(raw)) + raw


def encode_bytes(b: bytes) -> bytes:
    return encode_varint(len(b)) + bytes(b)


def hlc(millis: int, logical: int = 0) -> int:
    """Build a 64-bit hybrid logical clock."""
    if not 0 <= millis < MILLIS_LIMIT or not 0 <= logical <= LOGICAL_MAX:
        raise ValueError("clock out of range")
    return (millis << 16) | logical


def hlc_millis(clock: int) -> int:
    return clock >> 16


def hlc_logical(clock: int) -> int:
    return clock & 0xFFFF


class Reader:
    """Cursor over one complete payload. Every read is bounds-checked."""

    def __init__(self, data: bytes, context: str):
        self.data = bytes(data)
        self.pos = 0
        self.context = context  # e.g. "hello", used in error messages

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _what(self, what: str) -> str:
        return f"{self.context} {what}" if self.context else what

    def need(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise Truncated(f"truncated {self._what(what)}", field=self._what(what),
                            needed=n, remaining=self.remaining())

    def raw(self, n: int, what: str) -> bytes:
        self.need(n, what)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self, what: str) -> int:
        self.need(1, what)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self, what: str) -> int:
        result = 0
        for i in range(10):
            if self.pos >= len(self.data):
                raise Truncated(f"truncated {self._what(what)}", field=self._what(what))
            b = self.data[self.pos]
            self.pos += 1
            if i == 9 and (b & 0x80 or b > 1):
                raise VarintTooLong(
                    f"varint longer than 10 bytes (or over 64 bits) in {self._what(what)}",
                    field=self._what(what))
            result |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                # ASSUMPTION: non-shortest (overlong) forms are accepted; the spec only
                # obliges decoders to reject > 10 bytes or > 64 bits.
                return result
        raise AssertionError("unreachable")

    def svarint(self, what: str) -> int:
        return unzigzag(self.varint(what))

    def boolean(self, what: str) -> bool:
        b = self.u8(what)
        if b > 1:
            raise BadValue(f"bool {self._what(what)} is {b}, not 0 or 1", field=self._what(what), value=b)
        return b == 1

    def enum(self, what: str, allowed: Iterable[int]) -> int:
        b = self.u8(what)
        if b not in allowed:
            raise BadValue(f"bad enum value {b} in {self._what(what)}", field=self._what(what), value=b)
        return b

    def bytes_(self, what: str) -> bytes:
        n = self.varint(what + " length")
        if n > self.remaining():
            raise Truncated(f"truncated {self._what(what)}", field=self._what(what),
                            needed=n, remaining=self.remaining())
        return self.raw(n, what)

    def string(self, what: str) -> str:
        n = self.varint(what)
        if n > self.remaining():
            raise Truncated(f"truncated {self._what(what)}", field=self._what(what),
                            needed=n, remaining=self.remaining())
        raw = self.raw(n, what)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            raise InvalidUtf8(f"invalid UTF-8 in {self._what(what)}", field=self._what(what),
                              offset=e.start) from None

    def fixed32(self, what: str) -> bytes:
        return self.raw(FIXED32, what)

    def check_count(self, count: int, min_size: int, what: str) -> None:
        """Section 1: refuse a count of items that cannot fit in the bytes remaining."""
        if count * min_size > self.remaining():
            raise Truncated(
                f"truncated {self._what(what)}: {count} items need at least {count * min_size} bytes, "
                f"{self.remaining()} remain", field=self._what(what), count=count,
                remaining=self.remaining())


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    payload: bytes
    tag: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(self.type, self.payload, self.version, self.tag)

    def header(self) -> bytes:
        return MAGIC + bytes([self.version, self.type]) + len(self.payload).to_bytes(4, "big")


def encode_frame(msg_type: int, payload: bytes, version: int = PROTOCOL_VERSION, tag: bytes = b"") -> bytes:
    if not 0 <= msg_type <= 0xFF or not 0 <= version <= 0xFF:
        raise EncodeError("type/version must be one byte")
    if len(payload) > MAX_PAYLOAD:
        raise EncodeError(f"frame payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD}")
    head = MAGIC + bytes([version, msg_type]) + len(payload).to_bytes(4, "big")
    body = head + bytes(payload) + bytes(tag)
    return body + crc32c(body).to_bytes(4, "big")


class FrameDecoder:
    """Streaming frame decoder (section 3).

    ``feed(chunk)`` returns the complete frames now available (possibly none = "need more
    bytes") or raises a ``SiyuError``.  After an error the stream is dead: every later call
    raises the same error (section 3: no resynchronisation).
    """

    def __init__(self, versions: Iterable[int] = SUPPORTED_VERSIONS, max_payload: int = MAX_PAYLOAD):
        self.versions = frozenset(versions)
        self.max_payload = max_payload
        # Section 3: how many MAC bytes follow the payload of a frame of this type (0: not sealed).
        self.tag_size = lambda msg_type: 0
        self._buf = bytearray()
        self._error: Optional[SiyuError] = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def failed(self) -> Optional[SiyuError]:
        return self._error

    def feed(self, data: bytes) -> list[Frame]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Frame] = []
        try:
            while True:
                frame = self._next()
                if frame is None:
                    return out
                out.append(frame)
        except SiyuError as e:
            e.decoded_before = out
            self._error = e
            raise

    def eof(self) -> None:
        """The connection closed. A partial frame left in the buffer is an error."""
        if self._error is not None:
            raise self._error
        if self._buf:
            # ASSUMPTION: the spec does not say what a partial frame at close is; call it truncated.
            self._error = Truncated(f"connection closed inside a frame ({len(self._buf)} bytes buffered)")
            raise self._error

    def _next(self) -> Optional[Frame]:
        buf = self._buf
        n = len(buf)
        # 1. each magic byte as it arrives
        for i in range(min(n, 2)):
            if buf[i] != MAGIC[i]:
                got = " ".join(f"{b:02x}" for b in buf[:i + 1])
                raise BadMagic(f'bad magic byte(s) {got} (expected 53 59, "SY"): not a Siyu stream',
                               got=bytes(buf[:i + 1]))
        if n < HEADER_SIZE:
            return None
        # 2. header complete: version, then length limit
        version = buf[2]
        if version not in self.versions:
            raise UnsupportedVersion(f"unsupported protocol version {version}", version=version)
        length = int.from_bytes(buf[4:8], "big")
        if length > self.max_payload:
            raise FrameTooLarge(f"frame payload of {length} bytes exceeds the limit of {self.max_payload}",
                                length=length, limit=self.max_payload)
        tag = self.tag_size(buf[3])
        total = HEADER_SIZE + length + tag + CHECKSUM_SIZE
        if n < total:
            return None
        # 3. whole frame: CRC (over header, payload and a sealed frame's MAC)
        said = int.from_bytes(buf[HEADER_SIZE + length + tag:total], "big")
        computed = crc32c(buf[:HEADER_SIZE + length + tag])
        if said != computed:
            raise BadChecksum(f"bad checksum: frame says {said:08x}, computed {computed:08x}",
                              said=said, computed=computed)
        frame = Frame(version, buf[3], bytes(buf[HEADER_SIZE:HEADER_SIZE + length]),
                      bytes(buf[HEADER_SIZE + length:HEADER_SIZE + length + tag]))
        del buf[:total]
        return frame


# --------------------------------------------------------------------------------------------
# change sets
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stamp:
    clock: int
    node: str


@dataclass(frozen=True)
class Value:
    type: int
    data: object = None

    @staticmethod
    def null() -> "Value":
        return Value(V_NULL)

    @staticmethod
    def integer(n: int) -> "Value":
        return Value(V_INT, n)

    @staticmethod
    def text(s: str) -> "Value":
        return Value(V_TEXT, s)

    @staticmethod
    def blob(b: bytes) -> "Value":
        return Value(V_BYTES, bytes(b))

    @staticmethod
    def boolean(b: bool) -> "Value":
        return Value(V_TRUE if b else V_FALSE)


@dataclass(frozen=True)
class WriteBody:
    entity: int
    id: str
    sub: Optional[str]
    field: str
    value: Value


@dataclass(frozen=True)
class PairBody:
    """add/remove tag (customer, tag), member (chat, member), line (order, line)."""
    container: str
    member: str


@dataclass(frozen=True)
class StatusBody:
    order_id: str
    from_status: int
    to_status: int


@dataclass(frozen=True)
class PointsBody:
    customer_id: str
    delta: int


@dataclass(frozen=True)
class DeleteCustomerBody:
    customer_id: str


@dataclass(frozen=True)
class AcknowledgeBody:
    instance_kind: int
    id: str
    conflict_id: str


@dataclass(frozen=True)
class TagDeletionBody:
    instance_kind: int
    id: str


Body = Union[WriteBody, PairBody, StatusBody, PointsBody, DeleteCustomerBody, AcknowledgeBody, TagDeletionBody]

BODY_CLASS = {
    0: WriteBody, 1: PairBody, 2: PairBody, 3: PairBody, 4: PairBody, 5: PairBody, 6: PairBody,
    7: StatusBody, 8: PointsBody, 9: DeleteCustomerBody, 10: AcknowledgeBody, 11: TagDeletionBody,
}


@dataclass(frozen=True)
class Op:
    kind: int
    origin: str
    role: int
    seq: int
    clock: int
    author: str
    body: Body
    stamps: tuple[Stamp, ...] = ()


@dataclass
class ChangeSet:
    schema_version: int
    ops: list[Op] = field(default_factory=list)
    # As read from the wire. Informational only (compare=False): they depend on the connection's
    # string dictionary, not on the meaning; the encoder always writes the canonical values.
    base_clock: Optional[int] = field(default=None, compare=False)
    string_base: Optional[int] = field(default=None, compare=False)
    new_strings: Optional[tuple[str, ...]] = field(default=None, compare=False)


def utf8_size(strings: Iterable[str]) -> int:
    return sum(len(s.encode("utf-8")) for s in strings)


class StringDictionary:
    """Section 9, "The string dictionary": the strings one direction of one connection has
    defined so far.  Sender and receiver each keep one, empty when the connection opens, and
    update it by the same rule (``adopt``) after every change set they encode or decode, in the
    order the frames travel (section 7)."""

    def __init__(self, strings: Iterable[str] = ()):
        self.strings: list[str] = []
        self.size = 0                       # bytes of UTF-8 in all
        self._first: dict[str, int] = {}    # string -> its first place
        self.adopt(list(strings))

    def __len__(self) -> int:
        return len(self.strings)

    def __eq__(self, other) -> bool:
        return isinstance(other, StringDictionary) and self.strings == other.strings

    def __repr__(self) -> str:
        return f"StringDictionary({len(self.strings)} strings, {self.size} bytes)"

    def holds(self, s: str) -> bool:
        return s in self._first

    def copy(self) -> "StringDictionary":
        return StringDictionary(self.strings)

    def adopt(self, table: list[str]) -> None:
        """After a change set: the dictionary becomes its list T, and is then emptied if it
        holds more than 16,384 strings or more than 524,288 bytes of UTF-8."""
        size = utf8_size(table)
        if len(table) > DICTIONARY_MAX_STRINGS or size > DICTIONARY_MAX_BYTES:
            table, size = [], 0
        self.strings = list(table)
        self.size = size
        self._first = {}
        for i, s in enumerate(self.strings):
            self._first.setdefault(s, i)


def _read_clock(r: Reader, ref: int, what: str) -> int:
    return _clock_from_value(r, r.varint(what), ref, what)


def _clock_from_value(r: Reader, v: int, ref: int, what: str) -> int:
    """A clock whose clock value ``v`` is already read (the logical counter, if any, follows)."""
    delta = unzigzag(v >> 1)
    millis = hlc_millis(ref) + delta
    logical = 0
    if v & 1:
        logical = r.varint(what + " logical")
        if not 1 <= logical <= LOGICAL_MAX:
            raise BadValue(f"{r._what(what)}: logical counter {logical} not in 1...65535",
                           field=r._what(what), value=logical)
    if not 0 <= millis < MILLIS_LIMIT:
        raise BadValue(f"{r._what(what)}: milliseconds {millis} outside 0 ..< 2^48",
                       field=r._what(what), value=millis)
    return (millis << 16) | logical


def _clock_value(clock: int, ref: int) -> tuple[int, int]:
    """(v, logical) of the clock encoding of ``clock`` relative to ``ref``; logical 0 = absent."""
    if not isinstance(clock, int) or isinstance(clock, bool) or not 0 <= clock <= U64_MAX:
        raise EncodeError(f"clock out of range: {clock!r}")
    delta = hlc_millis(clock) - hlc_millis(ref)
    logical = hlc_logical(clock)
    return (zigzag(delta) << 1) | (1 if logical else 0), logical


def _write_clock(out: bytearray, clock: int, ref: int) -> None:
    v, logical = _clock_value(clock, ref)
    out += encode_varint(v)
    if logical:
        out += encode_varint(logical)


def op_stamp(op: Op) -> Stamp:
    """The stamp of an op (section 9): the pair (its clock, its origin node id); no role."""
    return Stamp(op.clock, op.origin)


def _read_new_strings(r: Reader, count: int) -> list[str]:
    """Section 9, "A new string": varint p (bytes shared with the new string before it), then
    ``bytes``, the rest.  The whole string must be UTF-8 (the split may fall inside a character).

    ASSUMPTION: the first new string is coded against the empty string, so its p must be 0
    (the spec says "0 for the first in the list" but names no error for another value)."""
    r.check_count(count, MIN_NEW_STRING_SIZE, "change set strings")
    strings: list[str] = []
    prev = b""
    total = 0
    for i in range(count):
        what = f"change set string {i}"
        p = r.varint(f"{what} prefix")
        if p > len(prev):
            raise BadValue(f"{r._what(what)}: shares {p} bytes with a previous string of {len(prev)}",
                           field=r._what(what), value=p)
        rest = r.bytes_(what)
        # ASSUMPTION: the size limit is checked per string, before its UTF-8 (the spec gives no order)
        total += p + len(rest)
        if total > NEW_STRINGS_MAX_BYTES:
            raise BadValue(f"{r._what(what)}: the new strings hold {total} bytes, over the limit of "
                           f"{NEW_STRINGS_MAX_BYTES}", field=r._what(what), value=total)
        raw = prev[:p] + rest
        try:
            strings.append(raw.decode("utf-8", errors="strict"))
        except UnicodeDecodeError as e:
            raise InvalidUtf8(f"invalid UTF-8 in {r._what(what)}", field=r._what(what),
                              offset=e.start) from None
        prev = raw
    return strings


def _read_stamp_list(r: Reader, earlier: list, op_clock: int, origin: str, index, w: str) -> tuple[Stamp, ...]:
    """Section 9, "Stamps in a list": one or more stamps, each a varint v whose bit 0 says that
    another stamp follows.  Bit 1 set: back-reference to the op d = v >> 2 positions earlier.
    Bit 1 clear: inline stamp, clock value v >> 3 relative to this op's clock (then its logical
    counter if the clock value's low bit is 1), node = this op's origin if bit 2 is set, else a
    string index follows."""
    stamps: list[Stamp] = []
    while True:
        what = f"{w} stamp {len(stamps)}"
        v = r.varint(what)
        if v & S_BACKREF:
            d = v >> 2
            if not 1 <= d <= len(earlier):
                raise BadValue(f"{r._what(what)}: back-reference {d} ops earlier, but {len(earlier)} op(s) "
                               f"precede it", field=r._what(what), value=d)
            stamps.append(op_stamp(earlier[len(earlier) - d]))
        else:
            clock = _clock_from_value(r, v >> 3, op_clock, f"{what} clock")
            node = origin if v & S_OWN_ORIGIN else index(f"{what} node")
            stamps.append(Stamp(clock, node))
        if not v & S_MORE:
            return tuple(stamps)


def decode_change_set(r: Reader, dictionary: Optional[StringDictionary] = None) -> tuple[ChangeSet, list[str]]:
    """Decode one change set against ``dictionary`` (an empty one if None: a change set on its
    own).  Returns the change set and its list T; the dictionary itself is NOT changed here:
    the caller adopts T once the whole frame has decoded (section 7)."""
    if dictionary is None:
        dictionary = StringDictionary()
    schema = r.varint("change set schema version")
    base = r.varint("change set string base")
    # ASSUMPTION: checked as soon as string_base is read (the spec does not order this error
    # against the ones later fields could raise).
    if base != 0 and base != len(dictionary):
        raise StringBaseMismatch(
            f"string base {base} does not match the {len(dictionary)} strings this connection's "
            f"dictionary holds (a change set was lost, reordered or decoded out of turn)",
            base=base, held=len(dictionary))
    string_count = r.varint("change set string count")
    new_strings = _read_new_strings(r, string_count)
    table = dictionary.strings[:base] + new_strings
    base_clock = r.varint("change set base clock")
    op_count = r.varint("change set op count")
    r.check_count(op_count, MIN_OP_SIZE, "change set ops")

    def index(what: str) -> str:
        i = r.varint(what)
        if i >= len(table):
            raise StringIndexOutOfRange(f"string index {i} out of range (table has {len(table)})",
                                        index=i, count=len(table), field=r._what(what))
        return table[i]

    ops: list[Op] = []
    prev: Optional[Op] = None
    for n in range(op_count):
        w = f"op {n}"
        header = r.u8(f"{w} header")
        kind = header & H_KIND_MASK
        has_list = bool(header & H_LIST)
        same_origin = bool(header & H_SAME_ORIGIN)
        next_seq = bool(header & H_NEXT_SEQ)
        same_author = bool(header & H_SAME_AUTHOR)
        if kind not in BODY_CLASS:
            raise BadValue(f"{w}: reserved op kind {kind}", kind_value=kind)
        if prev is None and (same_origin or next_seq or same_author):
            raise BadValue(f"{w}: the first op sets same origin / next seq / same author (header {header:#04x})")
        if next_seq and not same_origin:
            raise BadValue(f"{w}: next seq without same origin (header {header:#04x})")
        if has_list and kind in KINDS_WITHOUT_LIST:
            raise BadValue(f"{w}: {OP_KIND_NAMES[kind]} op sets the list bit")
        if same_origin:
            origin, role = prev.origin, prev.role
        else:
            origin = index(f"{w} origin")
            role = r.enum(f"{w} origin role", ROLES)
        if next_seq:
            seq = prev.seq + 1
            if seq > U64_MAX:
                raise BadValue(f"{w}: next seq overflows 64 bits")
        else:
            seq = r.varint(f"{w} seq")
            if seq == 0:
                raise BadValue(f"{w}: seq 0 (must be >= 1)")
        clock = _read_clock(r, prev.clock if prev else base_clock, f"{w} clock")
        author = prev.author if same_author else index(f"{w} author")
        body = _decode_body(r, kind, index, w)
        stamps = _read_stamp_list(r, ops, clock, origin, index, w) if has_list else ()
        op = Op(kind, origin, role, seq, clock, author, body, stamps)
        ops.append(op)
        prev = op
    return ChangeSet(schema, ops, base_clock, base, tuple(new_strings)), table


def _decode_body(r: Reader, kind: int, index, w: str) -> Body:
    if kind == OP_WRITE:
        entity = r.enum(f"{w} entity", ENTITIES)
        rid = index(f"{w} id")
        sub = index(f"{w} sub id") if entity in ENTITIES_WITH_SUB else None
        fname = index(f"{w} field")
        vtype = r.enum(f"{w} value type", VALUE_TYPE_NAMES)
        if vtype == V_NULL:
            value = Value.null()
        elif vtype == V_INT:
            value = Value.integer(r.svarint(f"{w} integer value"))
        elif vtype == V_TEXT:
            value = Value.text(index(f"{w} text value"))
        elif vtype == V_BYTES:
            value = Value.blob(r.bytes_(f"{w} bytes value"))
        else:
            value = Value(vtype)
        return WriteBody(entity, rid, sub, fname, value)
    if kind in PAIR_KINDS:
        return PairBody(index(f"{w} container id"), index(f"{w} member id"))
    if kind == OP_STATUS:
        oid = index(f"{w} order id")
        frm = r.enum(f"{w} from status", ORDER_STATUSES)
        to = r.enum(f"{w} to status", ORDER_STATUSES)
        return StatusBody(oid, frm, to)
    if kind == OP_POINTS:
        return PointsBody(index(f"{w} customer id"), r.svarint(f"{w} points delta"))
    if kind == OP_DELETE_CUSTOMER:
        return DeleteCustomerBody(index(f"{w} customer id"))
    if kind == OP_ACKNOWLEDGE:
        ik = r.enum(f"{w} instance kind", INSTANCE_KINDS)
        return AcknowledgeBody(ik, index(f"{w} id"), index(f"{w} conflict id"))
    if kind == OP_TAG_DELETION:
        # ASSUMPTION: any instance kind 1-7 decodes; "tag or tag group" is left to the receiver.
        ik = r.enum(f"{w} instance kind", INSTANCE_KINDS)
        return TagDeletionBody(ik, index(f"{w} id"))
    raise BadValue(f"{w}: reserved op kind {kind}")


def _check_enum(v, allowed, what):
    if isinstance(v, bool) or v not in allowed:
        raise EncodeError(f"bad {what}: {v!r}")


def _encode_body(out: bytearray, ref, op: Op) -> None:
    """``ref(s)`` writes the string index of ``s``."""
    b = op.body
    want = BODY_CLASS.get(op.kind)
    if want is None or not isinstance(b, want):
        raise EncodeError(f"op kind {op.kind} with body {type(b).__name__}")
    if op.kind == OP_WRITE:
        _check_enum(b.entity, ENTITIES, "entity")
        out.append(b.entity)
        out += ref(b.id)
        if b.entity in ENTITIES_WITH_SUB:
            if b.sub is None:
                raise EncodeError(f"entity {ENTITIES[b.entity]} needs a sub id")
            out += ref(b.sub)
        elif b.sub is not None:
            raise EncodeError(f"entity {ENTITIES[b.entity]} has no sub id")
        out += ref(b.field)
        v = b.value
        _check_enum(v.type, VALUE_TYPE_NAMES, "value type")
        out.append(v.type)
        if v.type == V_INT:
            out += encode_svarint(v.data)
        elif v.type == V_TEXT:
            out += ref(v.data)
        elif v.type == V_BYTES:
            out += encode_bytes(v.data)
    elif op.kind in PAIR_KINDS:
        out += ref(b.container)
        out += ref(b.member)
    elif op.kind == OP_STATUS:
        out += ref(b.order_id)
        _check_enum(b.from_status, ORDER_STATUSES, "order status")
        _check_enum(b.to_status, ORDER_STATUSES, "order status")
        out.append(b.from_status)
        out.append(b.to_status)
    elif op.kind == OP_POINTS:
        out += ref(b.customer_id)
        out += encode_svarint(b.delta)
    elif op.kind == OP_DELETE_CUSTOMER:
        out += ref(b.customer_id)
    elif op.kind == OP_ACKNOWLEDGE:
        _check_enum(b.instance_kind, INSTANCE_KINDS, "instance kind")
        out.append(b.instance_kind)
        out += ref(b.id)
        out += ref(b.conflict_id)
    elif op.kind == OP_TAG_DELETION:
        _check_enum(b.instance_kind, INSTANCE_KINDS, "instance kind")
        out.append(b.instance_kind)
        out += ref(b.id)


def _encode_stamp_list(out: bytearray, ref, op: Op, position: int, written: dict) -> None:
    """Canonical stamp list: a back-reference to the nearest earlier op with an identical stamp
    whenever there is one; otherwise inline, with the own-origin bit when the node is the op's
    origin (then no string index)."""
    last = len(op.stamps) - 1
    for k, s in enumerate(op.stamps):
        if not isinstance(s, Stamp) or not isinstance(s.node, str):
            raise EncodeError(f"expected a Stamp, got {s!r}")
        more = S_MORE if k < last else 0
        at = written.get(s)
        if at is not None:
            out += encode_varint(((position - at) << 2) | S_BACKREF | more)
            continue
        cv, logical = _clock_value(s.clock, op.clock)
        own = s.node == op.origin
        out += encode_varint((cv << 3) | (S_OWN_ORIGIN if own else 0) | more)
        if logical:
            out += encode_varint(logical)
        if not own:
            out += ref(s.node)


def _encode_ops(ops: list[Op], ref) -> bytes:
    """The ops of a change set, canonical (every applicable flag set; the first op's clock is
    base_clock, so its delta is 0).  ``ref(s)`` returns the bytes of the string index of ``s``;
    it is called in the canonical order of first use: per op origin, author, the body's
    strings in field order, then the stamp nodes written as an index."""
    # stamp of an op already written -> its position (later ops overwrite: the nearest wins).
    # Stamp equality = same 64-bit clock and same node id (Python str equality is code-point
    # equality, i.e. UTF-8 byte equality, no normalisation).
    written: dict[Stamp, int] = {}
    out = bytearray()
    prev: Optional[Op] = None
    for position, op in enumerate(ops):
        if op.kind not in BODY_CLASS:
            raise EncodeError(f"op kind {op.kind} is reserved")
        _check_enum(op.role, ROLES, "role")
        if not isinstance(op.seq, int) or not 1 <= op.seq <= U64_MAX:
            raise EncodeError(f"seq must be 1 ... 2^64-1, got {op.seq!r}")
        if op.stamps and op.kind in KINDS_WITHOUT_LIST:
            raise EncodeError(f"{OP_KIND_NAMES[op.kind]} op cannot carry a stamp list")
        same_origin = prev is not None and prev.origin == op.origin and prev.role == op.role
        next_seq = same_origin and op.seq == prev.seq + 1
        same_author = prev is not None and prev.author == op.author
        header = op.kind
        if op.stamps:
            header |= H_LIST
        if same_origin:
            header |= H_SAME_ORIGIN
        if next_seq:
            header |= H_NEXT_SEQ
        if same_author:
            header |= H_SAME_AUTHOR
        out.append(header)
        if not same_origin:
            out += ref(op.origin)
            out.append(op.role)
        if not next_seq:
            out += encode_varint(op.seq)
        _write_clock(out, op.clock, prev.clock if prev else op.clock)
        if not same_author:
            out += ref(op.author)
        _encode_body(out, ref, op)
        if op.stamps:
            _encode_stamp_list(out, ref, op, position, written)
        written[op_stamp(op)] = position
        prev = op
    return bytes(out)


def _shared_prefix(a: bytes, b: bytes) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _encode_new_strings(strings: list[str]) -> bytes:
    """Front-coded: each string as p (bytes shared with the one before, longest) and the rest."""
    out = bytearray()
    prev = b""
    for s in strings:
        raw = s.encode("utf-8")  # a str with lone surrogates raises here: no valid encoding
        p = _shared_prefix(prev, raw)
        out += encode_varint(p) + encode_bytes(raw[p:])
        prev = raw
    return bytes(out)


def encode_change_set_with_table(cs: ChangeSet, dictionary: StringDictionary) -> tuple[bytes, list[str]]:
    """Canonical encoding of ``cs`` on top of ``dictionary`` (section 9, "Valid and canonical
    encodings").  Returns the bytes and the list T; the dictionary is not changed here (the
    sender adopts T once the frame is made, see ``encode_message``)."""
    used: list[str] = []

    def record(s: str) -> bytes:
        if not isinstance(s, str):
            raise EncodeError(f"expected a string, got {s!r}")
        used.append(s)
        return b""

    _encode_ops(cs.ops, record)                # dry run: the strings in order of first use
    uses = list(dict.fromkeys(used))
    new = [s for s in uses if not dictionary.holds(s)]
    if (len(dictionary) + len(new) > DICTIONARY_MAX_STRINGS
            or dictionary.size + utf8_size(new) > DICTIONARY_MAX_BYTES):
        base, new = 0, uses                    # start afresh: every string used is new
    else:
        base = len(dictionary)
    if utf8_size(new) > NEW_STRINGS_MAX_BYTES:
        raise EncodeError(f"the new strings hold {utf8_size(new)} bytes, over the limit of "
                          f"{NEW_STRINGS_MAX_BYTES}: split the batch")
    table = dictionary.strings[:base] + new
    place: dict[str, int] = {}
    for i, s in enumerate(table):
        place.setdefault(s, i)                 # a string held twice is named by its first place
    ops = _encode_ops(cs.ops, lambda s: encode_varint(place[s]))
    out = bytearray(encode_varint(cs.schema_version))
    out += encode_varint(base)
    out += encode_varint(len(new))
    out += _encode_new_strings(new)
    out += encode_varint(cs.ops[0].clock if cs.ops else 0)
    out += encode_varint(len(cs.ops))
    out += ops
    return bytes(out), table


def encode_change_set(cs: ChangeSet, dictionary: Optional[StringDictionary] = None) -> bytes:
    """Canonical encoding; with a dictionary, the dictionary then adopts the change set's T."""
    data, table = encode_change_set_with_table(cs, dictionary if dictionary is not None else StringDictionary())
    if dictionary is not None:
        dictionary.adopt(table)
    return data


# --------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------

# field codec kinds
F_STRING, F_U8, F_VARINT, F_BOOL, F_BYTES, F_FIXED32, F_CHANGESET, F_ROLE, F_REASON = range(9)
# Fields appended to a message after its first version (section 5): absent when the payload ends
# before them (a peer that predates them), and then their default; written only when not the default.
F_OPT_FIXED32, F_OPT_BOOL = 9, 10
OPTIONAL_DEFAULTS = {F_OPT_FIXED32: b"", F_OPT_BOOL: False}


class Message:
    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    # (attribute, field kind, label used in error messages)
    FIELDS: ClassVar[tuple]


@dataclass
class Hello(Message):
    TYPE: ClassVar[int] = 0x01
    NAME: ClassVar[str] = "HELLO"
    FIELDS: ClassVar[tuple] = (("node_id", F_STRING, "node id"), ("role", F_ROLE, "role"),
                               ("versions", F_BYTES, "versions"), ("schema_version", F_VARINT, "schema version"),
                               ("nonce", F_FIXED32, "nonce"))
    # Section 5: fields from this index on were added by version 2: absent in a version 1 message.
    OPTIONAL_FROM: ClassVar[int] = 4
    node_id: str
    role: int
    versions: bytes
    schema_version: int
    nonce: bytes = b""


@dataclass
class Challenge(Message):
    TYPE: ClassVar[int] = 0x02
    NAME: ClassVar[str] = "CHALLENGE"
    FIELDS: ClassVar[tuple] = (("version", F_U8, "version"), ("hub_id", F_STRING, "hub id"),
                               ("nonce", F_FIXED32, "nonce"), ("salt", F_BYTES, "salt"),
                               ("iterations", F_VARINT, "iterations"))
    OPTIONAL_FROM: ClassVar[int] = 3
    version: int
    hub_id: str
    nonce: bytes
    salt: bytes = b""
    iterations: int = 0


@dataclass
class Auth(Message):
    TYPE: ClassVar[int] = 0x03
    NAME: ClassVar[str] = "AUTH"
    FIELDS: ClassVar[tuple] = (("mac", F_FIXED32, "mac"),)
    mac: bytes


@dataclass
class Welcome(Message):
    TYPE: ClassVar[int] = 0x04
    NAME: ClassVar[str] = "WELCOME"
    FIELDS: ClassVar[tuple] = (("acked_seq", F_VARINT, "acked seq"), ("log_head", F_VARINT, "log head"),
                               ("schema_version", F_VARINT, "schema version"), ("log_epoch", F_OPT_FIXED32, "log epoch"))
    acked_seq: int
    log_head: int
    schema_version: int
    log_epoch: bytes = b""


@dataclass
class Push(Message):
    TYPE: ClassVar[int] = 0x10
    NAME: ClassVar[str] = "PUSH"
    FIELDS: ClassVar[tuple] = (("change_set", F_CHANGESET, "change set"),)
    change_set: ChangeSet


@dataclass
class PushAck(Message):
    TYPE: ClassVar[int] = 0x11
    NAME: ClassVar[str] = "PUSH_ACK"
    FIELDS: ClassVar[tuple] = (("acked_seq", F_VARINT, "acked seq"),)
    acked_seq: int


@dataclass
class Pull(Message):
    TYPE: ClassVar[int] = 0x12
    NAME: ClassVar[str] = "PULL"
    FIELDS: ClassVar[tuple] = (("cursor", F_VARINT, "cursor"), ("byte_budget", F_VARINT, "byte budget"),
                               ("own_ops", F_OPT_BOOL, "own ops"))
    cursor: int
    byte_budget: int
    own_ops: bool = False


@dataclass
class Changes(Message):
    TYPE: ClassVar[int] = 0x13
    NAME: ClassVar[str] = "CHANGES"
    FIELDS: ClassVar[tuple] = (("next_cursor", F_VARINT, "next cursor"), ("more", F_BOOL, "more"),
                               ("change_set", F_CHANGESET, "change set"))
    next_cursor: int
    more: bool
    change_set: ChangeSet


@dataclass
class DigestRequest(Message):
    TYPE: ClassVar[int] = 0x14
    NAME: ClassVar[str] = "DIGEST_REQUEST"
    FIELDS: ClassVar[tuple] = (("cursor", F_VARINT, "cursor"),)
    cursor: int


@dataclass
class Digest(Message):
    TYPE: ClassVar[int] = 0x15
    NAME: ClassVar[str] = "DIGEST"
    FIELDS: ClassVar[tuple] = (("position", F_VARINT, "position"), ("digest", F_FIXED32, "digest"))
    position: int
    digest: bytes


@dataclass
class SnapshotBegin(Message):
    TYPE: ClassVar[int] = 0x20
    NAME: ClassVar[str] = "SNAPSHOT_BEGIN"
    FIELDS: ClassVar[tuple] = (("snapshot_id", F_VARINT, "snapshot id"), ("cursor", F_VARINT, "cursor"),
                               ("reason", F_REASON, "reason"))
    snapshot_id: int
    cursor: int
    reason: int


@dataclass
class SnapshotChunk(Message):
    TYPE: ClassVar[int] = 0x21
    NAME: ClassVar[str] = "SNAPSHOT_CHUNK"
    FIELDS: ClassVar[tuple] = (("snapshot_id", F_VARINT, "snapshot id"), ("index", F_VARINT, "index"),
                               ("change_set", F_CHANGESET, "change set"))
    snapshot_id: int
    index: int
    change_set: ChangeSet


@dataclass
class SnapshotEnd(Message):
    TYPE: ClassVar[int] = 0x22
    NAME: ClassVar[str] = "SNAPSHOT_END"
    FIELDS: ClassVar[tuple] = (("snapshot_id", F_VARINT, "snapshot id"), ("chunk_count", F_VARINT, "chunk count"),
                               ("digest", F_FIXED32, "digest"))
    snapshot_id: int
    chunk_count: int
    digest: bytes


@dataclass
class Ping(Message):
    TYPE: ClassVar[int] = 0x30
    NAME: ClassVar[str] = "PING"
    FIELDS: ClassVar[tuple] = (("token", F_VARINT, "token"),)
    token: int


@dataclass
class Pong(Message):
    TYPE: ClassVar[int] = 0x31
    NAME: ClassVar[str] = "PONG"
    FIELDS: ClassVar[tuple] = (("token", F_VARINT, "token"),)
    token: int


@dataclass
class Error(Message):
    TYPE: ClassVar[int] = 0x3E
    NAME: ClassVar[str] = "ERROR"
    FIELDS: ClassVar[tuple] = (("code", F_VARINT, "code"), ("retryable", F_BOOL, "retryable"),
                               ("message", F_STRING, "message"))
    code: int
    retryable: bool
    message: str


@dataclass
class Bye(Message):
    TYPE: ClassVar[int] = 0x3F
    NAME: ClassVar[str] = "BYE"
    FIELDS: ClassVar[tuple] = (("reason", F_STRING, "reason"),)
    reason: str


@dataclass
class Ignored(Message):
    """A frame of an ignorable type (0x80-0xFF) this implementation does not know."""
    NAME: ClassVar[str] = "IGNORED"
    FIELDS: ClassVar[tuple] = ()
    type: int
    payload: bytes

    @property
    def TYPE(self) -> int:  # type: ignore[override]
        return self.type


MESSAGE_CLASSES: dict[int, type] = {c.TYPE: c for c in (
    Hello, Challenge, Auth, Welcome, Push, PushAck, Pull, Changes, DigestRequest, Digest, SnapshotBegin, SnapshotChunk,
    SnapshotEnd, Ping, Pong, Error, Bye)}
MESSAGE_BY_NAME: dict[str, type] = {c.NAME: c for c in MESSAGE_CLASSES.values()}


def decode_payload(msg_type: int, payload: bytes, dictionary: Optional[StringDictionary] = None) -> Message:
    """Decode one payload.  A change set is decoded against ``dictionary`` (the receiving
    direction's; an empty one if None), which adopts the change set's strings only once the
    whole payload has decoded (section 7: a frame that fails leaves it unchanged)."""
    cls = MESSAGE_CLASSES.get(msg_type)
    if cls is None:
        if msg_type >= 0x80:
            return Ignored(msg_type, bytes(payload))
        raise UnknownMessageType(f"unknown message type 0x{msg_type:02x}", type=msg_type)
    r = Reader(payload, cls.NAME.lower().replace("_", " "))
    values = {}
    table = None
    optional_from = getattr(cls, "OPTIONAL_FROM", len(cls.FIELDS))
    for i, (attr, kind, label) in enumerate(cls.FIELDS):
        if i >= optional_from and r.remaining() == 0:
            break   # a version 1 message: the version 2 fields are absent
        if kind in OPTIONAL_DEFAULTS:
            if r.remaining() == 0:
                values[attr] = OPTIONAL_DEFAULTS[kind]
            else:
                values[attr] = r.fixed32(label) if kind == F_OPT_FIXED32 else r.boolean(label)
        elif kind == F_STRING:
            values[attr] = r.string(label)
        elif kind == F_U8:
            values[attr] = r.u8(label)
        elif kind == F_VARINT:
            values[attr] = r.varint(label)
        elif kind == F_BOOL:
            values[attr] = r.boolean(label)
        elif kind == F_BYTES:
            values[attr] = r.bytes_(label)
        elif kind == F_FIXED32:
            values[attr] = r.fixed32(label)
        elif kind == F_ROLE:
            values[attr] = r.enum(label, ROLES)
        elif kind == F_REASON:
            values[attr] = r.enum(label, SNAPSHOT_REASONS)
        elif kind == F_CHANGESET:
            values[attr], table = decode_change_set(r, dictionary)
        else:  # pragma: no cover
            raise AssertionError(kind)
    # Section 4: bytes after the last known field are fields of a later version: ignored.
    msg = cls(**values)
    if table is not None and dictionary is not None:
        dictionary.adopt(table)
    return msg


def decode_message(frame: Frame, dictionary: Optional[StringDictionary] = None) -> Message:
    return decode_payload(frame.type, frame.payload, dictionary)


def _encode_payload(msg: Message, dictionary: StringDictionary) -> tuple[bytes, Optional[list[str]]]:
    """The payload of ``msg`` and, if it holds a change set, that change set's list T."""
    if isinstance(msg, Ignored):
        return bytes(msg.payload), None
    out = bytearray()
    table = None
    optional_from = getattr(msg, "OPTIONAL_FROM", len(msg.FIELDS))
    for i, (attr, kind, label) in enumerate(msg.FIELDS):
        v = getattr(msg, attr)
        if i >= optional_from and all(not getattr(msg, a) for a, _, _ in msg.FIELDS[optional_from:]):
            break   # a version 1 message
        if kind in OPTIONAL_DEFAULTS:
            if v == OPTIONAL_DEFAULTS[kind]:
                continue
            kind = F_FIXED32 if kind == F_OPT_FIXED32 else F_BOOL
        if kind == F_STRING:
            out += encode_string(v)
        elif kind in (F_U8, F_ROLE, F_REASON):
            if kind == F_ROLE:
                _check_enum(v, ROLES, label)
            elif kind == F_REASON:
                _check_enum(v, SNAPSHOT_REASONS, label)
            elif isinstance(v, bool) or not 0 <= v <= 0xFF:
                raise EncodeError(f"{label} must be one byte, got {v!r}")
            out.append(v)
        elif kind == F_VARINT:
            out += encode_varint(v)
        elif kind == F_BOOL:
            if v not in (True, False):
                raise EncodeError(f"{label} must be a bool, got {v!r}")
            out.append(1 if v else 0)
        elif kind == F_BYTES:
            out += encode_bytes(v)
        elif kind == F_FIXED32:
            if len(v) != FIXED32:
                raise EncodeError(f"{label} must be exactly 32 bytes, got {len(v)}")
            out += bytes(v)
        elif kind == F_CHANGESET:
            data, table = encode_change_set_with_table(v, dictionary)
            out += data
    return bytes(out), table


def encode_payload(msg: Message, dictionary: Optional[StringDictionary] = None) -> bytes:
    payload, table = _encode_payload(msg, dictionary if dictionary is not None else StringDictionary())
    if table is not None and dictionary is not None:
        dictionary.adopt(table)
    return payload


def encode_message(msg: Message, version: int = PROTOCOL_VERSION,
                   dictionary: Optional[StringDictionary] = None) -> bytes:
    """One complete frame. HELLO and CHALLENGE are always version 1 frames (section 4).

    A change set is encoded on top of ``dictionary`` (the sending direction's; an empty one if
    None), which adopts the change set's strings only once the frame is made: a frame that
    cannot be sent (too large) leaves it unchanged."""
    if isinstance(msg, (Hello, Challenge)):
        version = 1
    payload, table = _encode_payload(msg, dictionary if dictionary is not None else StringDictionary())
    frame = encode_frame(msg.TYPE, payload, version)
    if table is not None and dictionary is not None:
        dictionary.adopt(table)
    return frame


class StreamEncoder:
    """The sending side of one direction of a connection: messages in, frames out, with the
    direction's string dictionary carried from one change set to the next."""

    def __init__(self):
        self.dictionary = StringDictionary()

    def encode(self, msg: Message, version: int = PROTOCOL_VERSION) -> bytes:
        return encode_message(msg, version, self.dictionary)


class StreamDecoder:
    """The receiving side of one direction of a connection: bytes in, messages out, with the
    direction's string dictionary.  Ignorable frames (0x80-0xFF) are skipped unless keep_ignored."""

    def __init__(self, versions: Iterable[int] = SUPPORTED_VERSIONS, keep_ignored: bool = False):
        self.frames = FrameDecoder(versions)
        self.dictionary = StringDictionary()
        self.keep_ignored = keep_ignored
        self._error: Optional[SiyuError] = None

    @property
    def buffered(self) -> int:
        return self.frames.buffered

    def feed(self, data: bytes) -> list[Message]:
        if self._error is not None:
            raise self._error
        out: list[Message] = []
        try:
            frames = self.frames.feed(data)
        except SiyuError as e:
            # decode the frames that preceded the framing error, then re-raise
            for f in e.decoded_before:
                m = decode_message(f, self.dictionary)
                if self.keep_ignored or not isinstance(m, Ignored):
                    out.append(m)
            e.decoded_before = out
            self._error = e
            raise
        for f in frames:
            try:
                m = decode_message(f, self.dictionary)
            except SiyuError as e:
                e.decoded_before = out
                self._error = e
                raise
            if self.keep_ignored or not isinstance(m, Ignored):
                out.append(m)
        return out

    def eof(self) -> None:
        self.frames.eof()


# --------------------------------------------------------------------------------------------
# authentication (section 6)
# --------------------------------------------------------------------------------------------

AUTH_LABEL = b"siyu-auth-v1"
AUTH_LABEL_V2 = b"siyu-auth-v2"
SESSION_LABEL = b"siyu-session-v2"
MAX_ITERATIONS = 100_000


def _secret_bytes(secret: Union[bytes, str]) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


@dataclass(frozen=True)
class ScramKeys:
    salted: bytes
    client_key: bytes
    stored_key: bytes
    server_key: bytes


def scram_keys(secret: Union[bytes, str], salt: bytes, iterations: int) -> ScramKeys:
    """Section 6: salted = PBKDF2-HMAC-SHA256(secret, salt, iterations, 32) (RFC 5802 "Hi")."""
    salted = hashlib.pbkdf2_hmac("sha256", _secret_bytes(secret), bytes(salt), iterations, 32)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramKeys(salted, client_key, hashlib.sha256(client_key).digest(), server_key)


def transcript(hello_payload: bytes, challenge_payload: bytes) -> bytes:
    return (AUTH_LABEL_V2 + b"\x00" + len(hello_payload).to_bytes(4, "big") + bytes(hello_payload)
            + len(challenge_payload).to_bytes(4, "big") + bytes(challenge_payload))


def auth_proof(keys: ScramKeys, transcript_bytes: bytes) -> bytes:
    signature = hmac.new(keys.stored_key, transcript_bytes, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(keys.client_key, signature))


def verify_proof(stored_key: bytes, proof: bytes, transcript_bytes: bytes) -> Optional[bytes]:
    """The client key a proof reveals if SHA-256 of it is stored_key, else None."""
    signature = hmac.new(stored_key, transcript_bytes, hashlib.sha256).digest()
    candidate = bytes(a ^ b for a, b in zip(proof, signature))
    return candidate if hmac.compare_digest(hashlib.sha256(candidate).digest(), stored_key) else None


def session_keys(client_key: bytes, server_key: bytes, transcript_bytes: bytes) -> tuple[bytes, bytes]:
    """(node_to_hub, hub_to_node)."""
    session = hmac.new(client_key, SESSION_LABEL + b"\x00" + server_key + transcript_bytes, hashlib.sha256).digest()
    return (hmac.new(session, b"node to hub", hashlib.sha256).digest(),
            hmac.new(session, b"hub to node", hashlib.sha256).digest())


def frame_tag(key: bytes, sequence: int, frame: Frame) -> bytes:
    """Section 3: HMAC-SHA256(key, u64be(sequence) || header || payload), first 16 bytes."""
    return hmac.new(key, sequence.to_bytes(8, "big") + frame.header() + frame.payload, hashlib.sha256).digest()[:TAG_SIZE]


def seal(key: bytes, sequence: int, frame: Frame) -> Frame:
    return Frame(frame.version, frame.type, frame.payload, frame_tag(key, sequence, frame))


def auth_input(nonce: bytes, node_id: str, hub_id: str) -> bytes:
    if len(nonce) != FIXED32:
        raise EncodeError("nonce must be 32 bytes")
    return AUTH_LABEL + b"\x00" + bytes(nonce) + node_id.encode("utf-8") + b"\x00" + hub_id.encode("utf-8")


def compute_auth_mac(secret: Union[bytes, str], nonce: bytes, node_id: str, hub_id: str) -> bytes:
    # ASSUMPTION: a textual secret is used as its UTF-8 bytes.
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    return hmac.new(key, auth_input(nonce, node_id, hub_id), hashlib.sha256).digest()


def verify_auth_mac(secret: Union[bytes, str], nonce: bytes, node_id: str, hub_id: str, mac: bytes) -> bool:
    return hmac.compare_digest(compute_auth_mac(secret, nonce, node_id, hub_id), bytes(mac))


# --------------------------------------------------------------------------------------------
# readable rendering (style of the vectors' "meaning:" sections; the spec does not define it)
# --------------------------------------------------------------------------------------------

def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_stamps(stamps: Iterable[Stamp]) -> str:
    return "[" + ", ".join(f"{s.clock}@{quote(s.node)}" for s in stamps) + "]"


def format_value(v: Value) -> str:
    if v.type == V_NULL:
        return "null"
    if v.type == V_INT:
        return f"int {v.data}"
    if v.type == V_TEXT:
        return f"text {quote(v.data)}"
    if v.type == V_BYTES:
        return f"bytes {bytes(v.data).hex()}"
    return "bool true" if v.type == V_TRUE else "bool false"


def format_op(op: Op) -> str:
    head = f"{quote(op.origin)}#{op.seq} hlc {op.clock} {ROLES.get(op.role, op.role)} by {quote(op.author)}: "
    b = op.body
    st = format_stamps(op.stamps)
    if op.kind == OP_WRITE:
        target = quote(b.id) + (f"/{quote(b.sub)}" if b.sub is not None else "")
        body = f"write {ENTITIES[b.entity]} {target} {b.field} = {format_value(b.value)} overwrites {st}"
    elif op.kind in PAIR_KINDS:
        verb = "add" if op.kind % 2 else "remove"
        body = f"{verb} {ENTITIES[PAIR_ENTITY[op.kind]]} {quote(b.container)}/{quote(b.member)} removes {st}"
    elif op.kind == OP_STATUS:
        body = (f"status order {quote(b.order_id)} {ORDER_STATUSES[b.from_status]} -> "
                f"{ORDER_STATUSES[b.to_status]} seen {st}")
    elif op.kind == OP_POINTS:
        body = f"points customer {quote(b.customer_id)} {b.delta:+d}"
    elif op.kind == OP_DELETE_CUSTOMER:
        body = f"delete customer {quote(b.customer_id)} observed {st}"
    elif op.kind == OP_ACKNOWLEDGE:
        body = f"acknowledge {INSTANCE_KINDS[b.instance_kind]} {quote(b.id)} conflict {quote(b.conflict_id)}"
    else:
        body = f"tag_deletion {INSTANCE_KINDS[b.instance_kind]} {quote(b.id)} seen {st}"
    return head + body


# labels the vectors use for fields
FIELD_LABELS = {"node_id": "node", "hub_id": "hub", "change_set": "change set"}


def format_message(msg: Message) -> list[str]:
    if isinstance(msg, Ignored):
        return [f"IGNORED (type 0x{msg.type:02x})", f"  payload: {msg.payload.hex()}"]
    lines = [f"{msg.NAME} (type 0x{msg.TYPE:02x})"]
    for attr, kind, _ in msg.FIELDS:
        v = getattr(msg, attr)
        label = FIELD_LABELS.get(attr, attr)
        if kind in OPTIONAL_DEFAULTS:
            if v == OPTIONAL_DEFAULTS[kind]:
                continue
            kind = F_FIXED32 if kind == F_OPT_FIXED32 else F_BOOL
        if kind == F_CHANGESET:
            lines.append(f"  {label}: schema {v.schema_version}, {len(v.ops)} ops")
            lines.extend("    " + format_op(op) for op in v.ops)
            continue
        if kind == F_STRING:
            s = quote(v)
        elif kind == F_BOOL:
            s = "true" if v else "false"
        elif kind == F_BYTES:
            s = ", ".join(f"{b:02x}" for b in v)
        elif kind == F_FIXED32:
            s = bytes(v).hex()
        elif kind == F_ROLE:
            s = ROLES[v]
        elif kind == F_REASON:
            s = SNAPSHOT_REASONS[v]
        elif isinstance(msg, Error) and attr == "code":
            s = f"{v} ({ERROR_CODES.get(v, 'unknown')})"
        else:
            s = str(v)
        lines.append(f"  {label}: {s}")
    return lines


if __name__ == "__main__":
    assert crc32c(b"123456789") == 0xE3069283 == crc32c_bitwise(b"123456789")
    print("crc32c check value ok")
