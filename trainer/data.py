"""Training data: JSONL rows → conversations (format module readers) → samples (format module
renderer) → features for the collator. Small pure functions; nothing here knows the format."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from services.core.chatformat import (
    Conversation,
    ModelProfile,
    Tokenizer,
    TrainingSample,
    read_row,
    render_training,
)

IGNORE_INDEX = -100  # torch cross_entropy's ignore_index: positions that carry no loss


class DataError(ValueError):
    """A data file that cannot be trained on; the message names the file and line."""


class Features(TypedDict):
    """One row for the collator. `shift_labels[t]` is the target of the prediction made at
    position t (the next token when it is trained, else IGNORE_INDEX), so rows can be packed
    without a label ever pointing into the next conversation."""

    input_ids: list[int]
    shift_labels: list[int]
    position_ids: list[int]


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every row of a JSONL file through the format module's readers; the first bad row stops
    it with its line number and every issue the reader found."""
    p = Path(path)
    conversations = [conv for _, conv in _iter_rows(p)]
    if not conversations:
        raise DataError(f"{p}: no rows to train on")
    return conversations


def _iter_rows(path: Path) -> Iterator[tuple[int, Conversation]]:
    try:
        f = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with f:
        try:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise DataError(f"{path}, line {number}: not valid JSON ({exc})") from None
                row, issues = read_row(obj)
                if row is None:
                    detail = "; ".join(
                        f"{i.code}: {i.message}" + (f" (at {i.param})" if i.param else "")
                        for i in issues
                        if i.severity == "error"
                    )
                    raise DataError(f"{path}, line {number}: {detail}")
                yield number, row.to_conversation()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} is not UTF-8 text: {exc}") from None


def render_samples(
    conversations: Sequence[Conversation],
    tokenizer: Tokenizer,
    max_seq_length: int,
    profile: ModelProfile,
) -> list[TrainingSample]:
    """DISC-MedLLM's SFTDataset rendering (whole rounds up to max_seq_length, then cut),
    done by the format module."""
    return [render_training(c, tokenizer, max_seq_length, profile=profile) for c in conversations]


def to_features(sample: TrainingSample) -> Features:
    """Shift the targets once, here: position t predicts token t+1, trained when the format
    module's mask marks token t+1. The last position predicts nothing."""
    ids, mask = sample.input_ids, sample.target_mask
    labels = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)]
    return Features(
        input_ids=list(ids),
        shift_labels=[*labels, IGNORE_INDEX],
        position_ids=list(range(len(ids))),
    )


@dataclass(frozen=True)
class DataStats:
    rows: int
    tokens: int
    target_tokens: int
    truncated: int
    dropped_untrained: int  # rows left with no target token after truncation


def build_features(
    samples: Sequence[TrainingSample],
) -> tuple[list[Features], DataStats]:
    """Features of every sample that still trains something after truncation."""
    features = [to_features(s) for s in samples if any(s.target_mask)]
    stats = DataStats(
        rows=len(features),
        tokens=sum(len(f["input_ids"]) for f in features),
        target_tokens=sum(sum(s.target_mask) for s in samples),
        truncated=sum(1 for s in samples if s.truncated),
        dropped_untrained=len(samples) - len(features),
    )
    return features, stats


def pad_token_id(tokenizer: Tokenizer, profile: ModelProfile) -> int:
    """Pad with unk, never eos: DISC-MedLLM pads with unk (0) so eos keeps its loss. The
    labels here come from the target mask, not from ids, so the pad id only has to be a
    token the model knows."""
    expected = profile.expected_ids.get("pad")
    if expected is not None:
        return expected
    if tokenizer.unk_id is not None:
        return tokenizer.unk_id
    # No unk (byte-fallback SentencePiece, most chat-template models): any id other than eos
    # will do, since padded positions are masked out of attention and loss.
    return 1 if tokenizer.eos_id == 0 else 0
