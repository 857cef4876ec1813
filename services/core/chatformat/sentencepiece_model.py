"""Read a SentencePiece `tokenizer.model` (a serialized ModelProto) without protobuf.

The sentencepiece Python API tells control, unknown, unused and byte pieces apart but not
user-defined ones, and Baichuan's `<reserved_N>` markers are user-defined pieces: they are
matched inside plain text, which is exactly what we must know to neutralize them
(tokenizer.py, through `piece_types`). Writing the model as a tokenizer.json
(sentencepiece_json.py) also needs the trainer and normalizer settings the API does not
expose. Decoding the few fields we need here avoids a protobuf runtime dependency and its
version pinning.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ModelProtoError(ValueError):
    """The bytes are not a SentencePiece model (sentencepiece_json raises it, as
    `ConversionError`, also for a model it cannot write as a tokenizer.json)."""


class PieceType(IntEnum):
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


class ModelType(IntEnum):
    UNIGRAM = 1
    BPE = 2
    WORD = 3
    CHAR = 4


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: PieceType


@dataclass(frozen=True)
class NormalizerSpec:
    name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


@dataclass(frozen=True)
class SentencePieceModel:
    """The fields of a ModelProto that decide how text is encoded and decoded (proto2
    defaults where the field is absent)."""

    pieces: tuple[Piece, ...]
    model_type: ModelType = ModelType.UNIGRAM
    byte_fallback: bool = False
    treat_whitespace_as_suffix: bool = False
    unk_piece: str = "<unk>"
    bos_piece: str = "<s>"
    eos_piece: str = "</s>"
    pad_piece: str = "<pad>"
    unk_surface: str = " \u2047 "
    normalizer: NormalizerSpec = field(default_factory=NormalizerSpec)
    denormalizer: NormalizerSpec | None = None

    def piece_id(self, piece: str, *kinds: PieceType) -> int | None:
        """Id of `piece` when it exists with one of `kinds` (any kind when none given)."""
        for i, p in enumerate(self.pieces):
            if p.piece == piece and (not kinds or p.type in kinds):
                return i
        return None

    def unk_id(self) -> int:
        """The unknown piece (SentencePiece requires exactly one)."""
        for i, p in enumerate(self.pieces):
            if p.type == PieceType.UNKNOWN:
                return i
        raise ModelProtoError("the model has no unknown piece")

    def pieces_of(self, *kinds: PieceType) -> list[str]:
        return [p.piece for p in self.pieces if p.type in kinds]


def piece_types(model_proto: bytes) -> list[PieceType]:
    """Type of every piece, in id order."""
    return [p.type for p in read_model(model_proto).pieces]


def read_model(model_proto: bytes) -> SentencePieceModel:
    """Decode a serialized ModelProto (the bytes of a `tokenizer.model`)."""
    pieces: list[Piece] = []
    values: dict[str, Any] = {}
    try:
        for number, value in _fields(model_proto):
            if number == 1:
                pieces.append(_piece(_bytes(value)))
            elif number == 2:
                values.update(_trainer_spec(_bytes(value)))
            elif number == 3:
                values["normalizer"] = _normalizer_spec(_bytes(value))
            elif number == 5:
                values["denormalizer"] = _normalizer_spec(_bytes(value))
    except (UnicodeDecodeError, struct.error, OverflowError) as exc:
        raise ModelProtoError(f"not a SentencePiece model: {exc}") from exc
    if not pieces:
        raise ModelProtoError("the model has no pieces: not a SentencePiece model")
    return SentencePieceModel(pieces=tuple(pieces), **values)


# --- ModelProto decoding (proto2 wire format) ------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelProtoError("truncated protobuf varint: not a SentencePiece model")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of every field of a message: an int for varint and fixed-width
    wire types (the raw little-endian bits), bytes for length-delimited ones."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ModelProtoError(f"protobuf wire type {wire}: not a SentencePiece model")
        if pos > end:
            raise ModelProtoError("truncated protobuf field: not a SentencePiece model")
        yield number, value


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ModelProtoError("a string field is not length-delimited: not a SentencePiece model")
    return value


def _text(value: int | bytes) -> str:
    return _bytes(value).decode("utf-8")


def _int(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise ModelProtoError("a number field is length-delimited: not a SentencePiece model")
    return value


def _piece(buf: bytes) -> Piece:
    text, score, kind = "", 0.0, PieceType.NORMAL  # proto2 defaults when a field is absent
    for number, value in _fields(buf):
        if number == 1:
            text = _text(value)
        elif number == 2:  # float (wire type 5)
            score = struct.unpack("<f", _int(value).to_bytes(4, "little"))[0]
        elif number == 3:
            try:
                kind = PieceType(_int(value))
            except ValueError as exc:
                raise ModelProtoError(f"piece {text!r} has unknown type {value!r}") from exc
    return Piece(text, score, kind)


def _normalizer_spec(buf: bytes) -> NormalizerSpec:
    values: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number == 1:
            values["name"] = _text(value)
        elif number == 2:
            values["precompiled_charsmap"] = _bytes(value)
        elif number == 3:
            values["add_dummy_prefix"] = bool(_int(value))
        elif number == 4:
            values["remove_extra_whitespaces"] = bool(_int(value))
        elif number == 5:
            values["escape_whitespaces"] = bool(_int(value))
    return NormalizerSpec(**values)


_TRAINER_STRINGS = {
    44: "unk_surface",
    45: "unk_piece",
    46: "bos_piece",
    47: "eos_piece",
    48: "pad_piece",
}
_TRAINER_FLAGS = {35: "byte_fallback", 24: "treat_whitespace_as_suffix"}


def _trainer_spec(buf: bytes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number == 3:
            try:
                values["model_type"] = ModelType(_int(value))
            except ValueError as exc:
                raise ModelProtoError(f"unknown SentencePiece model_type {value!r}") from exc
        elif number in _TRAINER_FLAGS:
            values[_TRAINER_FLAGS[number]] = bool(_int(value))
        elif number in _TRAINER_STRINGS:
            values[_TRAINER_STRINGS[number]] = _text(value)
    return values
