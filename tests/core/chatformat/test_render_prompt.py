"""render_prompt: round dropping, budgets, and the text form agreeing with the id form."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.chatformat import (
    GENERIC,
    FormatError,
    PromptTooLong,
    Role,
    Turn,
    load_tokenizer,
    prompt_budget,
    render_prompt,
)

U, A, BOS, EOS = 195, 196, 1, 2


def turns(*texts: str) -> list[Turn]:
    roles: tuple[Role, Role] = ("user", "assistant")
    return [Turn(role=roles[i % 2], content=t) for i, t in enumerate(texts)]


def test_prompt_matches_training_prefix(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    e = tok.encode
    p = render_prompt(turns("头痛", "休息", "发烧"), tok, 4096)
    assert p.input_ids == [BOS, U, *e("头痛"), A, *e("休息"), EOS, U, *e("发烧"), A]
    assert p.text == "<s><reserved_102>头痛<reserved_103>休息</s><reserved_102>发烧<reserved_103>"
    assert (p.turns_kept, p.turns_dropped) == (3, 0)
    assert tok.encode_text_form(p.text) == p.input_ids


def test_oldest_whole_rounds_dropped_first(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    history = turns(
        "第一个问题很长很长很长", "第一个回答", "第二个问题", "第二个回答", "第三个问题"
    )
    full = render_prompt(history, tok, 4096)
    last_round = render_prompt(history[-1:], tok, 4096)
    two_rounds = render_prompt(history[2:], tok, 4096)
    # A budget that fits the newest two rounds but not the first.
    p = render_prompt(history, tok, len(full.input_ids) - 1)
    assert p.input_ids == two_rounds.input_ids and p.text == two_rounds.text
    assert (p.turns_kept, p.turns_dropped) == (3, 2)
    p = render_prompt(history, tok, len(two_rounds.input_ids) - 1)
    assert p.input_ids == last_round.input_ids
    assert (p.turns_kept, p.turns_dropped) == (1, 4)
    # Exactly at the budget still fits.
    assert render_prompt(history, tok, len(full.input_ids)).turns_kept == 5


def test_newest_message_larger_than_budget_is_an_error(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    with pytest.raises(PromptTooLong) as info:
        render_prompt(turns("头痛" * 100), tok, 20)
    assert info.value.budget == 20 and info.value.tokens > 20
    assert "shorten" in str(info.value)


def test_unanswered_user_turn_is_kept_in_order(sp_dir: Path) -> None:
    # A failed engine call leaves a user message without an answer; the next prompt keeps it.
    tok = load_tokenizer(sp_dir)
    history = [Turn(role="user", content="在吗"), Turn(role="user", content="头痛")]
    p = render_prompt(history, tok, 4096)
    assert p.input_ids == [BOS, U, *tok.encode("在吗"), U, *tok.encode("头痛"), A]


def test_history_must_end_with_user(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    with pytest.raises(FormatError, match="end with the user"):
        render_prompt(turns("头痛", "休息"), tok, 4096)
    with pytest.raises(FormatError):
        render_prompt([], tok, 4096)


def test_system_is_kept_and_counted(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    p = render_prompt(turns("头痛"), tok, 4096, system="你是医生")
    assert p.input_ids == [BOS, *tok.encode("你是医生"), U, *tok.encode("头痛"), A]
    assert tok.encode_text_form(p.text) == p.input_ids


def test_hf_marker_tokenizer_text_form(hf_marker_dir: Path) -> None:
    tok = load_tokenizer(hf_marker_dir)
    p = render_prompt(turns("头痛 since Monday", "rest", "fever 38.5"), tok, 4096)
    assert tok.encode_text_form(p.text) == p.input_ids


def test_dummy_prefix_tokenizer_text_form_differs(sp_dummy_prefix_dir: Path) -> None:
    # Why the gateway must prove the text form against the engine at startup: with a
    # Llama-style dummy prefix, the string an engine tokenizes is not the trained id form.
    tok = load_tokenizer(sp_dummy_prefix_dir)
    p = render_prompt(turns("头痛"), tok, 4096)
    assert tok.encode_text_form(p.text) != p.input_ids


def test_generic_template_prompt(chatml_dir: Path) -> None:
    tok = load_tokenizer(chatml_dir)
    history = turns("hi", "hello", "how are you")
    p = render_prompt(history, tok, 4096, profile=GENERIC, system="be kind")
    assert p.text == (
        "<|im_start|>system\nbe kind<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nhow are you<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert p.input_ids == tok.encode_text_form(p.text)
    short = render_prompt(history, tok, len(p.input_ids) - 1, profile=GENERIC, system="be kind")
    assert (short.turns_kept, short.turns_dropped) == (1, 2)


def test_prompt_budget() -> None:
    assert prompt_budget(4096, 2048, None) == 2048
    assert prompt_budget(4096, 1000, 3000) == 3000
    with pytest.raises(FormatError):
        prompt_budget(4096, 4096, None)
