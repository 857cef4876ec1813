"""render_training against hand-built expectations of DISC-MedLLM's SFTDataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm

from services.core.chatformat import (
    BAICHUAN2,
    GENERIC,
    FormatError,
    chat_format,
    load_tokenizer,
    read_row,
    render_training,
    to_conversation,
)
from services.core.chatformat.render import TrainingStats

U, A, BOS, EOS = 195, 196, 1, 2


@pytest.fixture(scope="module")
def sp(sp_dir: Path) -> spm.SentencePieceProcessor:
    # The raw SentencePiece processor is the independent oracle for content ids.
    return spm.SentencePieceProcessor(model_file=str(sp_dir / "tokenizer.model"))


def disc(*pairs: str) -> Any:
    roles = ["user", "assistant"]
    return to_conversation(
        {"conversation": [{"role": roles[i % 2], "content": c} for i, c in enumerate(pairs)]}
    )


def test_two_rounds_exact(sp_dir: Path, sp: spm.SentencePieceProcessor) -> None:
    tok = load_tokenizer(sp_dir)
    u1, a1, u2, a2 = (sp.encode(t) for t in ("头痛三天", "建议休息", "发烧吗", "请测体温"))
    sample = render_training(disc("头痛三天", "建议休息", "发烧吗", "请测体温"), tok, 1200)
    assert sample.input_ids == [BOS, U, *u1, A, *a1, EOS, U, *u2, A, *a2, EOS]
    assert sample.target_mask == (
        [0]
        + [0] * (1 + len(u1))
        + [0]
        + [1] * (len(a1) + 1)
        + [0] * (1 + len(u2))
        + [0]
        + [1] * (len(a2) + 1)
    )
    assert not sample.truncated and sample.trained_tokens_lost == 0


def test_weight_zero_turn_is_context_only(sp_dir: Path, sp: spm.SentencePieceProcessor) -> None:
    tok = load_tokenizer(sp_dir)
    conv = to_conversation(
        {
            "messages": [
                {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "休息", "weight": 0},
                {"role": "user", "content": "发烧"},
                {"role": "assistant", "content": "就医"},
            ]
        }
    )
    sample = render_training(conv, tok, 1200)
    u1, a1, u2, a2 = (sp.encode(t) for t in ("头痛", "休息", "发烧", "就医"))
    assert sample.input_ids == [BOS, U, *u1, A, *a1, EOS, U, *u2, A, *a2, EOS]
    assert sample.target_mask == (
        [0] * (2 + len(u1)) + [0] * (len(a1) + 2) + [0] * (1 + len(u2)) + [0] + [1] * (len(a2) + 1)
    )


def test_system_text_follows_bos_untrained(sp_dir: Path, sp: spm.SentencePieceProcessor) -> None:
    tok = load_tokenizer(sp_dir)
    conv = to_conversation(
        {
            "messages": [
                {"role": "system", "content": "你是医生"},
                {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "休息"},
            ]
        }
    )
    s = render_training(conv, tok, 1200)
    sys_ids = sp.encode("你是医生")
    assert s.input_ids[: 1 + len(sys_ids)] == [BOS, *sys_ids]
    assert s.target_mask[: 1 + len(sys_ids) + 1] == [0] * (2 + len(sys_ids))


def test_stops_before_the_message_that_does_not_fit(
    sp_dir: Path, sp: spm.SentencePieceProcessor
) -> None:
    tok = load_tokenizer(sp_dir)
    u1, a1, u2, a2 = (sp.encode(t) for t in ("头痛三天", "建议休息", "发烧吗", "请测体温"))
    first_round = 1 + (1 + len(u1)) + (len(a1) + 2)
    # Room for round 1 and the second question, not its answer: DISC-MedLLM keeps the
    # second user message (mask 0) and drops the answer whole.
    limit = first_round + 1 + len(u2) + 1
    s = render_training(disc("头痛三天", "建议休息", "发烧吗", "请测体温"), tok, limit)
    assert s.input_ids == [BOS, U, *u1, A, *a1, EOS, U, *u2]
    assert s.truncated
    assert s.full_length == first_round + 1 + len(u2) + len(a2) + 2
    assert s.trained_tokens_lost == len(a2) + 1


def test_first_message_too_long_leaves_only_bos(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    s = render_training(disc("头痛" * 50, "休息"), tok, 10)
    assert s.input_ids == [BOS] and s.target_mask == [0]
    assert s.trained_tokens_lost > 0


def test_all_shipped_rows_render(sp_dir: Path, sft_rows: list[dict[str, Any]]) -> None:
    tok = load_tokenizer(sp_dir)
    for row in sft_rows:
        s = render_training(to_conversation(row), tok, 1200)
        assert s.input_ids[0] == BOS and len(s.input_ids) == len(s.target_mask) <= 1200
        assert sum(s.target_mask) > 0
        # Every trained span ends on eos and starts right after an assistant marker.
        for i, m in enumerate(s.target_mask):
            if m and (i + 1 == len(s.target_mask) or not s.target_mask[i + 1]):
                assert s.input_ids[i] == EOS
            if m and not s.target_mask[i - 1]:
                assert s.input_ids[i - 1] == A


def test_hf_tokenizer_gives_the_same_structure(hf_marker_dir: Path) -> None:
    tok = load_tokenizer(hf_marker_dir)
    s = render_training(disc("头痛", "休息"), tok, 1200)
    assert s.input_ids == [BOS, U, *tok.encode("头痛"), A, *tok.encode("休息"), EOS]


def test_profile_mismatch_is_loud(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    # The test tokenizer's user-defined pieces end at <reserved_106> (id 199).
    with pytest.raises(FormatError, match="reserved_107"):
        chat_format(tok, BAICHUAN2)
    with pytest.raises(FormatError, match="chat template"):
        chat_format(tok, GENERIC)


def test_generic_chat_template_masks_assistant_turns(chatml_dir: Path) -> None:
    tok = load_tokenizer(chatml_dir)
    conv = to_conversation(
        {
            "messages": [
                {"role": "system", "content": "be kind"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "bye"},
                {"role": "assistant", "content": "ciao", "weight": 0},
            ]
        }
    )
    s = render_training(conv, tok, 4096, profile=GENERIC)
    text = tok.decode(s.input_ids)
    assert text.startswith("<|im_start|>system\nbe kind<|im_end|>")
    trained = tok.decode([t for t, m in zip(s.input_ids, s.target_mask, strict=True) if m])
    assert trained == "hello<|im_end|>\n"


@pytest.mark.parametrize("max_len", [8, 60, 200, 1200])
def test_measure_agrees_with_render(
    sp_dir: Path, sft_rows: list[dict[str, Any]], max_len: int
) -> None:
    # The validator counts without rendering; it must agree with the real render exactly.
    fmt = chat_format(load_tokenizer(sp_dir))
    rows = [
        *sft_rows,
        {
            "messages": [
                {"role": "system", "content": "你是一名医生。" * 5},
                {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "休息", "weight": 0},
                {"role": "user", "content": "发烧"},
                {"role": "assistant", "content": "就医"},
            ]
        },
    ]
    for obj in rows:
        row, _ = read_row(obj)
        assert row is not None
        texts = row.contents + ([row.system] if row.system else [])
        lengths = [len(c.ids) for c in fmt.encode_contents(texts)]
        stats = fmt.measure_training(row, lengths, max_len)
        sample = fmt.render_training(row.to_conversation(), max_len)
        assert stats == TrainingStats(
            sample.full_length,
            len(sample.input_ids),
            sum(sample.target_mask),
            sample.trained_tokens_lost,
        )
