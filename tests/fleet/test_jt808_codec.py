"""The JT/T 808 codec against frames published from real terminals and platforms (R-IN-2):
a 2019 registration and its 0x8100 answer, a 2013 location report and a 0x8001 answer, byte
for byte; escaping, the check code and the BCD fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cityloop.fleet import jt808
from cityloop.fleet.jt808 import FrameError


def frame(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


# A simulator's 2019 registration (terminal 20-digit number 00000000000223456789, plate 京D12345)
# and the platform's answer with the auth code "nugmQRV4axlLGjjonA==".
REG_2019 = frame(
    "7E 01 00 40 54 01 00 00 00 00 00 02 23 45 67 89 00 00 00 0B 00 65 01 23 45 67 89 AB CD EF"
    " 00 00 00 01 23 45 67 89 AB CD EF"
    + " 00" * 22
    + " 01 23 45 67 89 AB CD EF"
    + " 00" * 22
    + " 01 BE A9 44 31 32 33 34 35 93 7E"
)
REG_2019_REPLY = frame(
    "7E 81 00 40 17 01 00 00 00 00 00 02 23 45 67 89 00 00 00 00 00 6E 75 67 6D 51 52 56 34 61"
    " 78 6C 4C 47 6A 6A 6F 6E 41 3D 3D 13 7E"
)
# A 2013 terminal's location report (terminal 002002604323, serial 0x00A4) with extra items.
LOC_2013 = frame(
    "7E 02 00 00 52 00 20 02 60 43 23 00 A4 00 02 00 00 00 0C 00 02 01 58 B9 1B 06 CB 70 61 00 46"
    " 00 00 00 59 21 09 22 16 37 58 01 04 00 00 00 01 03 02 00 00 25 04 00 00 00 01 30 01 11 31"
    " 01 10 E3 01 00 D5 1B 02 20 02 60 43 23 27 95 93 78 61 60 00 12 20 00 00 12 34 27 95 93 78"
    " 61 58 00 12 86 7E"
)
REPLY_2013 = frame("7E 80 01 00 05 00 20 02 60 43 23 00 09 00 EE 02 00 00 43 7E")


def test_a_2019_registration_reads_and_its_answer_is_the_published_bytes() -> None:
    message = jt808.decode(REG_2019[1:-1])
    assert message.header.msg_id == jt808.REGISTER
    assert message.header.version == 1 and message.header.edition == 2019
    assert message.header.phone == "00000000000223456789"
    assert jt808.canonical_phone(message.header.phone) == "000223456789"
    reg = jt808.parse_registration(message.body, 2019)
    assert (reg.province, reg.city, reg.plate_color, reg.plate) == (11, 101, 1, "京D12345")
    answer = jt808.encode(
        jt808.REGISTER_REPLY,
        jt808.register_reply(message.header.serial, jt808.REG_OK, "nugmQRV4axlLGjjonA=="),
        phone=message.header.phone,
        serial=0,
        version=1,
    )
    assert answer == REG_2019_REPLY


def test_a_2013_location_reads_with_its_time_in_beijing_and_the_reply_is_byte_exact() -> None:
    message = jt808.decode(LOC_2013[1:-1])
    assert message.header.edition == 2013 and message.header.phone == "002002604323"
    assert message.header.serial == 0xA4
    loc = jt808.parse_location(message.body)
    assert (loc.lat, loc.lon, loc.altitude_m, loc.heading) == (22.591771, 113.995873, 70, 89)
    assert loc.fixed
    assert loc.at.astimezone(UTC) == datetime(2021, 9, 22, 8, 37, 58, tzinfo=UTC)
    assert loc.extra[0x01] == b"\x00\x00\x00\x01"  # mileage item
    reply = jt808.encode(
        jt808.PLATFORM_REPLY,
        jt808.platform_reply(0xEE, jt808.LOCATION, jt808.OK),
        phone="002002604323",
        serial=9,
        version=None,
    )
    assert reply == REPLY_2013


def test_escaping_round_trips_flags_and_escapes_inside_a_frame() -> None:
    raw = bytes([0x30, 0x7E, 0x08, 0x7D, 0x55])
    assert jt808.escape(raw) == bytes([0x30, 0x7D, 0x02, 0x08, 0x7D, 0x01, 0x55])
    assert jt808.unescape(jt808.escape(raw)) == raw
    # A body whose check code itself is 0x7e still frames as one frame.
    out = jt808.encode(0x0002, b"", phone="013800138000", serial=0x7E7D, version=None)
    assert out.count(0x7E) == 2
    assert jt808.decode(out[1:-1]).header.serial == 0x7E7D


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f[:-2] + bytes([f[-2] ^ 0xFF]) + f[-1:], "check code"),
        (lambda f: f[:5] + b"\x7d\x03" + f[5:], "bad escape"),
        (lambda f: f[:8], "too short"),
    ],
)
def test_a_damaged_frame_is_refused_with_its_reason(damage, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        jt808.decode(damage(LOC_2013[1:-1]))


def test_a_bad_check_code_still_tells_whom_to_answer() -> None:
    body = LOC_2013[1:-1]
    with pytest.raises(FrameError) as caught:
        jt808.decode(body[:-1] + bytes([body[-1] ^ 1]))
    assert caught.value.header is not None and caught.value.header.serial == 0xA4


def test_frames_split_across_reads_and_glued_together_are_cut_right() -> None:
    buffer = bytearray(b"noise" + LOC_2013 + REPLY_2013[:7])
    assert jt808.split_frames(buffer) == [LOC_2013[1:-1]]
    buffer.extend(REPLY_2013[7:])
    assert jt808.split_frames(buffer) == [REPLY_2013[1:-1]]
    assert buffer == bytearray()


def test_bcd_numbers() -> None:
    assert jt808.bcd_encode("13800138000", 6) == bytes.fromhex("013800138000")
    assert jt808.bcd_decode(bytes.fromhex("013800138000")) == "013800138000"
    with pytest.raises(FrameError):
        jt808.bcd_decode(b"\x1a")


def test_a_batch_of_locations_reads_every_item() -> None:
    at = datetime(2026, 8, 27, 8, 0, tzinfo=UTC)
    items = [jt808.location_body(118.1 + i / 1000, 24.48, at, speed_kmh=12.5) for i in range(3)]
    kind, locs = jt808.parse_batch(jt808.batch_body(items, kind=1))
    assert kind == 1 and [round(x.lon, 3) for x in locs] == [118.1, 118.101, 118.102]
    assert locs[0].speed_kmh == 12.5 and locs[0].at == at
