"""The JT/T 808 codec (道路运输车辆卫星定位系统终端通信协议及数据格式), 2013 and 2019 editions.

Pure bytes in, bytes out; no I/O and no database. Written from the standard's layout:

- a frame is 0x7e | header | body | check code | 0x7e; inside it 0x7e is sent as 0x7d 0x02
  and 0x7d as 0x7d 0x01; the check code is the XOR of every byte of header and body, taken
  before escaping;
- the header is message id (WORD), body properties (WORD: bits 0-9 body length, 10-12
  encryption, 13 sub-package, 14 version flag in 2019), then in 2013 the terminal's phone
  number as BCD[6] (12 digits), in 2019 the protocol version (BYTE) and BCD[10] (20 digits),
  then the serial number (WORD) and, when the sub-package bit is set, the packet count and
  packet number (WORD each);
- WORD and DWORD are big-endian; STRING is GBK.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from operator import xor

FLAG = 0x7E
ESCAPE = 0x7D

# Message ids used here (terminal → platform, then platform → terminal).
TERMINAL_REPLY = 0x0001
HEARTBEAT = 0x0002
LOGOUT = 0x0003
REGISTER = 0x0100
AUTHENTICATE = 0x0102
LOCATION = 0x0200
BATCH_LOCATION = 0x0704
PLATFORM_REPLY = 0x8001
REGISTER_REPLY = 0x8100

# 0x8001 results: 0 success/confirmed, 1 failure, 2 message wrong, 3 not supported,
# 4 alarm handling confirmed.
OK, FAILURE, MESSAGE_WRONG, NOT_SUPPORTED = 0, 1, 2, 3
# 0x8100 results: 0 success, 1 vehicle already registered, 2 no such vehicle in the database,
# 3 terminal already registered, 4 no such terminal in the database.
REG_OK, REG_VEHICLE_TAKEN, REG_NO_VEHICLE, REG_TERMINAL_TAKEN, REG_NO_TERMINAL = 0, 1, 2, 3, 4

BEIJING = timezone(timedelta(hours=8))  # location times are GMT+8 in the standard


class FrameError(ValueError):
    """A frame that cannot be read: bad escape, bad length, truncated, bad check code."""

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header  # known when only the check code or the body is wrong


# -- framing ------------------------------------------------------------------------------------
def escape(raw: bytes) -> bytes:
    if b"\x7d" not in raw and b"\x7e" not in raw:
        return raw
    return raw.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    if b"\x7d" not in data:
        return bytes(data)  # most frames: nothing to undo
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == ESCAPE:
            if i + 1 >= len(data):
                raise FrameError("escape 0x7d at the end of the frame")
            nxt = data[i + 1]
            if nxt == 0x01:
                out.append(0x7D)
            elif nxt == 0x02:
                out.append(0x7E)
            else:
                raise FrameError(f"bad escape 0x7d 0x{nxt:02x}")
            i += 2
            continue
        out.append(byte)
        i += 1
    return bytes(out)


def checksum(data: bytes) -> int:
    return reduce(xor, data, 0)


def split_frames(buffer: bytearray) -> list[bytes]:
    """Take every complete frame (between two 0x7e, flags excluded) out of `buffer`; what
    precedes the first flag is noise and is dropped, an incomplete tail stays."""
    frames: list[bytes] = []
    while True:
        start = buffer.find(b"\x7e")
        if start < 0:
            buffer.clear()
            return frames
        if start:
            del buffer[:start]
        end = buffer.find(b"\x7e", 1)
        if end < 0:
            return frames
        body = bytes(buffer[1:end])
        if not body:
            # Two flags in a row: the second opens the next frame.
            del buffer[:1]
            continue
        frames.append(body)
        del buffer[: end + 1]


# -- BCD ------------------------------------------------------------------------------------------
def bcd_encode(digits: str, size: int) -> bytes:
    if not digits.isdigit() or len(digits) > size * 2:
        raise ValueError(f"{digits!r} is not at most {size * 2} digits")
    digits = digits.rjust(size * 2, "0")
    return bytes(int(digits[i : i + 2], 16) for i in range(0, len(digits), 2))


def bcd_decode(data: bytes) -> str:
    text = data.hex()
    if not text.isdigit():
        raise FrameError(f"BCD field {text} holds a non-decimal nibble")
    return text


def canonical_phone(digits: str) -> str:
    """The terminal number as the platform keeps it: 12 digits (the 2013 BCD[6]); a 2019
    BCD[10] number keeps its digits when its leading ones are not zeros."""
    stripped = digits.lstrip("0")
    return stripped.rjust(12, "0") if len(stripped) <= 12 else stripped


# -- header and messages --------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    msg_id: int
    phone: str  # the digits as sent: 12 (2013) or 20 (2019)
    serial: int
    version: int | None = None  # the 2019 protocol version; None for 2013
    encryption: int = 0
    packet: tuple[int, int] | None = None  # (count, number) of a sub-package

    @property
    def edition(self) -> int:
        return 2019 if self.version is not None else 2013


@dataclass(frozen=True)
class Message:
    header: Header
    body: bytes


def decode(frame: bytes) -> Message:
    """One frame without its flags, still escaped → its header and body. Raises FrameError."""
    raw = unescape(frame)
    if len(raw) < 13:
        raise FrameError(f"{len(raw)} bytes are too short for a header and a check code")
    content, check = raw[:-1], raw[-1]
    msg_id, props = struct.unpack_from(">HH", content, 0)
    length = props & 0x03FF
    encryption = (props >> 10) & 0x07
    split = bool(props & 0x2000)
    if props & 0x4000:
        if len(content) < 17:
            raise FrameError("truncated 2019 header")
        version = content[4]
        phone = bcd_decode(content[5:15])
        (serial,) = struct.unpack_from(">H", content, 15)
        offset = 17
    else:
        version = None
        phone = bcd_decode(content[4:10])
        (serial,) = struct.unpack_from(">H", content, 10)
        offset = 12
    packet = None
    if split:
        if len(content) < offset + 4:
            raise FrameError("truncated sub-package fields")
        packet = struct.unpack_from(">HH", content, offset)
        offset += 4
    header = Header(msg_id, phone, serial, version, encryption, packet)
    if checksum(content) != check:
        raise FrameError(
            f"check code 0x{check:02x}, computed 0x{checksum(content):02x}", header=header
        )
    body = content[offset:]
    if len(body) != length:
        raise FrameError(f"body of {len(body)} bytes, header says {length}", header=header)
    return Message(header, body)


def encode(msg_id: int, body: bytes, *, phone: str, serial: int, version: int | None) -> bytes:
    """A whole frame, flags included, in the edition of `version` (None: 2013)."""
    if len(body) > 0x03FF:
        raise ValueError("a body over 1023 bytes must be split into packages")
    props = len(body)
    if version is None:
        head = struct.pack(">HH", msg_id, props) + bcd_encode(phone[-12:], 6)
    else:
        head = struct.pack(">HHB", msg_id, props | 0x4000, version) + bcd_encode(phone, 10)
    content = head + struct.pack(">H", serial & 0xFFFF) + body
    return b"\x7e" + escape(content + bytes([checksum(content)])) + b"\x7e"


def platform_reply(reply_serial: int, reply_id: int, result: int) -> bytes:
    """Body of 0x8001."""
    return struct.pack(">HHB", reply_serial, reply_id, result)


def register_reply(reply_serial: int, result: int, auth_code: str | None) -> bytes:
    """Body of 0x8100: the auth code only follows a success."""
    body = struct.pack(">HB", reply_serial, result)
    if result == REG_OK and auth_code:
        body += auth_code.encode("gbk")
    return body


def _string(data: bytes) -> str:
    return data.rstrip(b"\x00").decode("gbk", errors="replace").strip()


@dataclass(frozen=True)
class Registration:
    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str


def parse_registration(body: bytes, edition: int) -> Registration:
    sizes = (5, 20, 7) if edition == 2013 else (11, 30, 30)
    fixed = 4 + sum(sizes) + 1
    if len(body) < fixed:
        raise FrameError(f"registration body of {len(body)} bytes, at least {fixed} expected")
    province, city = struct.unpack_from(">HH", body, 0)
    at = 4
    fields = []
    for size in sizes:
        fields.append(_string(body[at : at + size]))
        at += size
    return Registration(
        province,
        city,
        maker=fields[0],
        model=fields[1],
        terminal_id=fields[2],
        plate_color=body[at],
        plate=_string(body[at + 1 :]),
    )


def registration_body(reg: Registration, edition: int) -> bytes:
    sizes = (5, 20, 7) if edition == 2013 else (11, 30, 30)
    out = struct.pack(">HH", reg.province, reg.city)
    for value, size in zip((reg.maker, reg.model, reg.terminal_id), sizes, strict=True):
        out += value.encode("gbk")[:size].ljust(size, b"\x00")
    return out + bytes([reg.plate_color]) + reg.plate.encode("gbk")


def parse_auth_code(body: bytes, edition: int) -> str:
    if edition == 2013:
        return _string(body)
    if not body:
        raise FrameError("empty authentication body")
    size = body[0]
    if len(body) < 1 + size:
        raise FrameError("authentication code longer than its body")
    return _string(body[1 : 1 + size])


def auth_body(code: str, edition: int, imei: str = "", software: str = "") -> bytes:
    raw = code.encode("gbk")
    if edition == 2013:
        return raw
    return (
        bytes([len(raw)])
        + raw
        + imei.encode()[:15].ljust(15, b"\x00")
        + software.encode()[:20].ljust(20, b"\x00")
    )


@dataclass(frozen=True)
class Location:
    alarm: int
    status: int
    lon: float
    lat: float
    altitude_m: int
    speed_kmh: float
    heading: int
    at: datetime
    extra: dict[int, bytes] = field(default_factory=dict)

    @property
    def fixed(self) -> bool:
        return bool(self.status & 0x02)  # status bit 1: 1 = positioned


def parse_location(body: bytes) -> Location:
    if len(body) < 28:
        raise FrameError(f"location body of {len(body)} bytes, 28 expected at least")
    alarm, status, lat_raw, lon_raw, altitude, speed, heading = struct.unpack_from(
        ">IIIIHHH", body, 0
    )
    stamp = bcd_decode(body[22:28])
    try:
        at = datetime(
            2000 + int(stamp[0:2]),
            int(stamp[2:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[8:10]),
            int(stamp[10:12]),
            tzinfo=BEIJING,
        )
    except ValueError as exc:
        raise FrameError(f"location time {stamp} is not a time") from exc
    lat = lat_raw / 1_000_000 * (-1 if status & 0x04 else 1)  # bit 2: south latitude
    lon = lon_raw / 1_000_000 * (-1 if status & 0x08 else 1)  # bit 3: west longitude
    extra: dict[int, bytes] = {}
    at_byte = 28
    while at_byte + 2 <= len(body):
        item, size = body[at_byte], body[at_byte + 1]
        extra[item] = body[at_byte + 2 : at_byte + 2 + size]
        at_byte += 2 + size
    return Location(alarm, status, lon, lat, altitude, speed / 10, heading, at, extra)


def location_body(
    lon: float,
    lat: float,
    at: datetime,
    *,
    speed_kmh: float = 0.0,
    heading: int = 0,
    altitude_m: int = 0,
    alarm: int = 0,
    status: int = 0x02,
) -> bytes:
    if lat < 0:
        status |= 0x04
    if lon < 0:
        status |= 0x08
    stamp = at.astimezone(BEIJING).strftime("%y%m%d%H%M%S")
    return struct.pack(
        ">IIIIHHH",
        alarm,
        status,
        round(abs(lat) * 1_000_000),
        round(abs(lon) * 1_000_000),
        altitude_m,
        round(speed_kmh * 10),
        heading,
    ) + bcd_encode(stamp, 6)


def parse_batch(body: bytes) -> tuple[int, list[Location]]:
    """0x0704: item count (WORD), kind (BYTE: 0 normal batch, 1 blind-area supplement), then
    per item its length (WORD) and a 0x0200 body. Returns (kind, locations)."""
    if len(body) < 3:
        raise FrameError("batch body too short")
    count, kind = struct.unpack_from(">HB", body, 0)
    at = 3
    items = []
    for _ in range(count):
        if at + 2 > len(body):
            raise FrameError("batch ends before its items")
        (size,) = struct.unpack_from(">H", body, at)
        at += 2
        if at + size > len(body):
            raise FrameError("batch item longer than the body")
        items.append(parse_location(body[at : at + size]))
        at += size
    return kind, items


def batch_body(bodies: list[bytes], kind: int = 0) -> bytes:
    out = struct.pack(">HB", len(bodies), kind)
    for item in bodies:
        out += struct.pack(">H", len(item)) + item
    return out
