"""Encoding of values, entry metadata and stored records (no I/O; imports errors, entry).

A value is msgpack. A stored record (one per version, see ``lua/commit.lua``) is
``b'<revision>|<time_ms>|<kind>|<len(meta)>|' + meta + value`` where ``meta`` is the msgpack
array ``[writer, schema, schema_version, activation, depth, trace]``. Anything that does not
parse raises `CorruptEntryError` naming the key, never a decoder traceback.
"""

from __future__ import annotations

from typing import Any

import msgpack

from blackboard.errors import CorruptEntryError, InvalidValueError
from blackboard.store.entry import Causation, Entry

KINDS = {b"p": "put", b"d": "delete", b"a": "apply", b"m": "merge", b"q": "propose"}
KIND_CODES = {v: k.decode() for k, v in KINDS.items()}

_packb = msgpack.Packer(use_bin_type=True, datetime=False).pack


def encode_value(key: str, value: Any, limit: int) -> bytes:
    """msgpack bytes of `value`; raises InvalidValueError if not encodable or over `limit`."""
    try:
        data = bytes(_packb(value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValueError(key, f"cannot encode {type(value).__name__}: {exc}") from None
    if len(data) > limit:
        raise InvalidValueError(key, f"{len(data)} bytes encoded, over the limit of {limit}")
    return data


def decode_value(key: str, data: bytes) -> Any:
    """The value in `data`; raises CorruptEntryError."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise CorruptEntryError(key, f"value is not msgpack ({exc})") from None


def encode_meta(
    writer: str,
    schema: str | None = None,
    schema_version: int | None = None,
    causation: Causation | None = None,
) -> bytes:
    if causation is None:
        return bytes(_packb([writer, schema, schema_version, None, 0, None]))
    return bytes(
        _packb(
            [writer, schema, schema_version, causation.activation, causation.depth, causation.trace]
        )
    )


def parse_record(key: str, version: int, record: bytes) -> tuple[Entry, bytes]:
    """Split a stored record into an Entry (value not decoded yet) and the value bytes."""
    try:
        rev_b, ts_b, kind_b, mlen_b, rest = record.split(b"|", 4)
        mlen = int(mlen_b)
        meta = msgpack.unpackb(rest[:mlen], raw=False)
        writer, schema, schema_version, activation, depth, trace = meta
        kind = KINDS[kind_b]
        causation = None
        if activation is not None or depth or trace is not None:
            causation = Causation(activation, depth, trace)
        entry = Entry(
            key=key,
            value=None,
            version=version,
            revision=int(rev_b),
            writer=writer,
            time_ms=int(ts_b),
            schema=schema,
            schema_version=schema_version,
            causation=causation,
            deleted=kind == "delete",
            kind=kind,
        )
    except CorruptEntryError:
        raise
    except Exception as exc:
        raise CorruptEntryError(key, f"record of version {version} is malformed ({exc})") from None
    return entry, rest[mlen:]
