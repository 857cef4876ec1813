"""Read piece types straight from a SentencePiece `tokenizer.model` (a ModelProto).

The sentencepiece Python API tells control, unknown, unused and byte pieces apart but not
user-defined ones, and Baichuan's `<reserved_N>` markers are user-defined pieces: they are
matched inside plain text, which is exactly what we must know to neutralize them. Decoding
the few fields we need here avoids a protobuf runtime dependency and its version pinning.
"""

from __future__ import annotations

from enum import IntEnum


class PieceType(IntEnum):
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported protobuf wire type {wire}: not a SentencePiece model")


def piece_types(model_proto: bytes) -> list[PieceType]:
    """Type of every piece, in id order (ModelProto field 1 = repeated SentencePiece)."""
    types: list[PieceType] = []
    pos, end = 0, len(model_proto)
    while pos < end:
        key, pos = _varint(model_proto, pos)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 2:
            length, pos = _varint(model_proto, pos)
            types.append(_piece_type(model_proto[pos : pos + length]))
            pos += length
        else:
            pos = _skip(model_proto, pos, wire)
    return types


def _piece_type(piece: bytes) -> PieceType:
    pos, kind = 0, PieceType.NORMAL  # proto2 default when the field is absent
    while pos < len(piece):
        key, pos = _varint(piece, pos)
        field, wire = key >> 3, key & 7
        if field == 3 and wire == 0:
            value, pos = _varint(piece, pos)
            kind = PieceType(value)
        else:
            pos = _skip(piece, pos, wire)
    return kind
