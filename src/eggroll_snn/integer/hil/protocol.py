"""The wire format of the hardware-in-the-loop fitness protocol (see :mod:`eggroll_snn.integer.hil`).

One message is::

    MAGIC (8 bytes, b"ESNNHIL1") | length (8 bytes, little-endian unsigned) | payload (length bytes)

and the payload is an uncompressed ``.npz`` archive (``numpy.savez``) whose array ``"header"`` is
the UTF-8 bytes (uint8) of a JSON object with at least ``"type"``; every other array is a named
integer array of the message. Both directions use the same framing.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np

MAGIC = b"ESNNHIL1"
#: Largest payload accepted (a length above it is garbage, not a message).
MAX_PAYLOAD_BYTES = 1 << 31
_LENGTH = struct.Struct("<Q")


class ProtocolError(ValueError):
    """Bytes that are not a message of this protocol (the text says what was wrong)."""


def encode(header: dict, arrays: dict | None = None) -> bytes:
    """One framed message: ``header`` (JSON-serialisable) and named numpy ``arrays``."""
    buffer = io.BytesIO()
    payload = {name: np.asarray(value) for name, value in (arrays or {}).items()}
    payload["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    np.savez(buffer, **payload)
    body = buffer.getvalue()
    return MAGIC + _LENGTH.pack(len(body)) + body


def decode_prefix(prefix: bytes) -> int:
    """The payload length announced by the 16-byte ``prefix`` of a message.

    Raises:
      ProtocolError: wrong magic or an impossible length.
    """
    if len(prefix) != len(MAGIC) + _LENGTH.size or prefix[: len(MAGIC)] != MAGIC:
        raise ProtocolError(f"the message does not start with {MAGIC!r} (got {prefix[:16]!r})")
    (length,) = _LENGTH.unpack(prefix[len(MAGIC) :])
    if length > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"the message announces {length} bytes, more than the limit of {MAX_PAYLOAD_BYTES}")
    return length


def decode_payload(body: bytes) -> tuple[dict, dict]:
    """``(header, arrays)`` of a payload.

    Raises:
      ProtocolError: not an ``.npz`` archive, no JSON header, or object arrays.
    """
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        header = json.loads(bytes(arrays.pop("header")).decode("utf-8"))
    except (ValueError, KeyError, OSError, UnicodeDecodeError, EOFError) as error:
        raise ProtocolError(f"the payload is not an npz archive with a JSON header ({type(error).__name__}: {error})") from None
    if not isinstance(header, dict) or "type" not in header:
        raise ProtocolError(f"the header {header!r} is not a JSON object with a 'type'")
    return header, arrays


def read_message(stream) -> tuple[dict, dict] | None:
    """Read one message from a binary ``stream``; ``None`` at a clean end of stream (before a message)."""
    prefix = stream.read(len(MAGIC) + _LENGTH.size)
    if not prefix:
        return None
    length = decode_prefix(prefix)
    body = stream.read(length)
    if len(body) != length:
        raise ProtocolError(f"the stream ended after {len(body)} of {length} payload bytes")
    return decode_payload(body)


def write_message(stream, header: dict, arrays: dict | None = None) -> None:
    stream.write(encode(header, arrays))
    stream.flush()


__all__ = ["MAGIC", "MAX_PAYLOAD_BYTES", "ProtocolError", "encode", "decode_prefix", "decode_payload", "read_message", "write_message"]
