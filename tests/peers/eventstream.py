"""AWS event-stream message encoding (``application/vnd.amazon.eventstream``), written from the
AWS / Smithy event-stream specification, for the streaming Lambda peer.

A message is::

    total length   u32 BE   (the whole message, these 4 bytes and the trailing CRC included)
    headers length u32 BE
    prelude CRC32  u32 BE   (of the 8 bytes above)
    headers        name length u8, name (UTF-8), value type u8, value
    payload
    message CRC32  u32 BE   (of everything before it, prelude CRC included)

Header value types: 0 true, 1 false (no value bytes), 2 byte, 3 short, 4 integer, 5 long (signed,
BE), 6 byte array and 7 string (u16 BE length + bytes), 8 timestamp (i64 ms since the epoch),
9 uuid (16 bytes).

The tests check these bytes with botocore's independent decoder (``botocore.eventstream``), so
this module and the filter cannot share a misunderstanding. Nothing here imports botocore.
"""

from __future__ import annotations

import json
import struct
import uuid as _uuid
import zlib
from dataclasses import dataclass
from typing import Iterable, Optional, Union

PRELUDE_LENGTH = 12
TRAILER_LENGTH = 4
HTTP_PRELUDE_DELIMITER = b"\x00" * 8  # after the JSON of awslambda.HttpResponseStream.from

BOOL_TRUE, BOOL_FALSE, BYTE, SHORT, INTEGER, LONG, BYTES, STRING, TIMESTAMP, UUID = range(10)


@dataclass(frozen=True)
class Header:
    name: str
    type: int
    value: Union[bool, int, bytes, str, _uuid.UUID, None] = None

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        if not 1 <= len(name) <= 255:
            raise ValueError(f"header name {self.name!r}: 1..255 bytes")
        out = struct.pack("!B", len(name)) + name + struct.pack("!B", self.type)
        t, v = self.type, self.value
        if t in (BOOL_TRUE, BOOL_FALSE):
            return out
        if t == BYTE:
            return out + struct.pack("!b", v)
        if t == SHORT:
            return out + struct.pack("!h", v)
        if t == INTEGER:
            return out + struct.pack("!i", v)
        if t in (LONG, TIMESTAMP):
            return out + struct.pack("!q", v)
        if t in (BYTES, STRING):
            raw = v.encode("utf-8") if isinstance(v, str) else bytes(v)
            if len(raw) > 0xFFFF:
                raise ValueError(f"header {self.name!r}: value over 65535 bytes")
            return out + struct.pack("!H", len(raw)) + raw
        if t == UUID:
            return out + (v.bytes if isinstance(v, _uuid.UUID) else bytes(v))
        raise ValueError(f"header {self.name!r}: unknown type {t}")


def string(name: str, value: str) -> Header:
    return Header(name, STRING, value)


def encode_headers(headers: Iterable[Header]) -> bytes:
    return b"".join(h.encode() for h in headers)


def crc32(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def encode_message(headers: Iterable[Header], payload: bytes = b"") -> bytes:
    hdr = encode_headers(headers)
    total = PRELUDE_LENGTH + len(hdr) + len(payload) + TRAILER_LENGTH
    prelude = struct.pack("!II", total, len(hdr))
    prelude += struct.pack("!I", crc32(prelude))
    body = prelude + hdr + payload
    return body + struct.pack("!I", crc32(body))


# -- InvokeWithResponseStream's events ---------------------------------------------------
def event_headers(event_type: str, content_type: str) -> list[Header]:
    return [string(":event-type", event_type), string(":content-type", content_type),
            string(":message-type", "event")]


def payload_chunk(data: bytes) -> bytes:
    """A ``PayloadChunk`` event: ``Payload`` is its event payload (the raw bytes)."""
    return encode_message(event_headers("PayloadChunk", "application/octet-stream"), data)


def invoke_complete(error_code: Optional[str] = None, error_details: Optional[str] = None,
                    log_result: Optional[str] = None) -> bytes:
    """An ``InvokeComplete`` event: its members as a JSON document (absent ones left out)."""
    doc = {k: v for k, v in (("ErrorCode", error_code), ("ErrorDetails", error_details),
                             ("LogResult", log_result)) if v is not None}
    return encode_message(event_headers("InvokeComplete", "application/json"),
                          json.dumps(doc, separators=(",", ":")).encode())


def exception(exception_type: str, message: str) -> bytes:
    """A modelled exception in the stream (``:message-type`` = ``exception``)."""
    return encode_message([string(":exception-type", exception_type),
                           string(":content-type", "application/json"),
                           string(":message-type", "exception")],
                          json.dumps({"message": message}).encode())


def error(code: str, message: str) -> bytes:
    """An unmodelled error in the stream (``:message-type`` = ``error``)."""
    return encode_message([string(":error-code", code), string(":error-message", message),
                           string(":message-type", "error")])


def http_prelude(status_code: int, headers: Optional[dict] = None,
                 cookies: Optional[list[str]] = None) -> bytes:
    """What ``awslambda.HttpResponseStream.from`` writes before the body: JSON, 8 NULs."""
    doc: dict = {"statusCode": status_code}
    if headers is not None:
        doc["headers"] = headers
    if cookies is not None:
        doc["cookies"] = cookies
    return json.dumps(doc).encode() + HTTP_PRELUDE_DELIMITER


# -- damage, for the framing-error cases ---------------------------------------------------
def _flip(frame: bytes, at: int) -> bytes:
    b = bytearray(frame)
    b[at] ^= 0x01
    return bytes(b)


def corrupt(frame: bytes, how: str) -> bytes:
    """One encoded message made invalid in one way:

    * ``prelude_crc``    the prelude CRC does not match (lengths left intact);
    * ``message_crc``    the message CRC does not match;
    * ``payload``        a payload (or last header) byte flipped: only the message CRC notices;
    * ``total_length``   total length smaller than prelude + headers + CRC, CRCs recomputed
                         (a length check, not a CRC check, must catch it);
    * ``headers_length`` headers length past the end of the message, CRCs recomputed;
    * ``header_type``    a header value type byte of 42, CRCs recomputed.
    """
    if how == "prelude_crc":
        return _flip(frame, 8)
    if how == "message_crc":
        return _flip(frame, len(frame) - 1)
    if how == "payload":
        return _flip(frame, len(frame) - TRAILER_LENGTH - 1)
    total, hlen = struct.unpack("!II", frame[:8])
    if how == "total_length":
        return _reframe(frame, PRELUDE_LENGTH + TRAILER_LENGTH - 1, hlen)
    if how == "headers_length":
        return _reframe(frame, total, total)
    if how == "header_type":
        name_len = frame[PRELUDE_LENGTH]
        b = bytearray(frame)
        b[PRELUDE_LENGTH + 1 + name_len] = 42
        return _reframe(bytes(b), total, hlen)
    raise ValueError(f"unknown corruption {how!r}")


def _reframe(frame: bytes, total: int, hlen: int) -> bytes:
    """The same bytes with new length fields and both CRCs recomputed to match them."""
    prelude = struct.pack("!II", total, hlen)
    prelude += struct.pack("!I", crc32(prelude))
    body = prelude + frame[PRELUDE_LENGTH:-TRAILER_LENGTH]
    return body + struct.pack("!I", crc32(body))
