"""Dialogue → tokens, for training and for inference. The only place that knows the format.

Marker format (DISC-MedLLM / Baichuan), exactly as DISC-MedLLM's SFTDataset:
    training  [bos] ([user] enc(u) | mask 0) ([assistant] enc(a) [eos] | mask 0, then 1…1)
              stop before a message that would pass max_seq_length, then cut to it
    inference [bos] + earlier turns as in training + [user] enc(u) [assistant]
A system text, when a row has one, is encoded right after bos with mask 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .conversation import Conversation, Turn
from .neutralize import Content, ContentEncoder
from .profiles import DISC_MEDLLM, ModelProfile
from .readers import Row
from .tokenizer import HFTokenizer, Tokenizer


class FormatError(ValueError):
    """The tokenizer and the profile do not fit together, or the input cannot be rendered."""


class PromptTooLong(ValueError):
    """The newest message alone does not fit the prompt budget (never sent as an empty prompt)."""

    def __init__(self, tokens: int, budget: int):
        self.tokens = tokens
        self.budget = budget
        super().__init__(
            f"the current message needs {tokens} prompt tokens but the budget is {budget};"
            " shorten the message or lower max_new_tokens"
        )


@dataclass(frozen=True, slots=True)
class TrainingSample:
    input_ids: list[int]
    target_mask: list[int]
    full_length: int  # tokens before truncation
    trained_tokens_lost: int  # target tokens cut away by truncation

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.input_ids)


@dataclass(frozen=True, slots=True)
class TrainingStats:
    """What truncation does to one row, without building its ids (the validator's view)."""

    full_length: int  # tokens before truncation
    kept_length: int
    trained_tokens: int  # target tokens kept
    trained_tokens_lost: int

    @property
    def truncated(self) -> bool:
        return self.full_length > self.kept_length


@dataclass(frozen=True, slots=True)
class Prompt:
    input_ids: list[int]
    text: str
    turns_kept: int
    turns_dropped: int


def prompt_budget(max_total_tokens: int, max_new_tokens: int, max_input_tokens: int | None) -> int:
    """Prompt tokens allowed by an engine's limits (TGI /info) for one request."""
    budget = max_total_tokens - max_new_tokens
    if max_input_tokens is not None:
        budget = min(budget, max_input_tokens)
    if budget <= 0:
        raise FormatError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt"
            f" within max_total_tokens={max_total_tokens}"
        )
    return budget


def _rounds(turns: Sequence[Turn]) -> list[list[int]]:
    """Turn indices grouped into rounds: a user turn and everything up to the next one."""
    rounds: list[list[int]] = []
    for i, turn in enumerate(turns):
        if turn.role == "user" or not rounds:
            rounds.append([])
        rounds[-1].append(i)
    return rounds


def _fit(sizes: Sequence[int], head: int, max_len: int) -> int:
    """DISC-MedLLM's truncation rule: after `head` tokens, keep messages while they fit and
    stop before the first that would pass `max_len`. Returns how many messages are kept."""
    used = head
    for i, n in enumerate(sizes):
        used += n
        if used > max_len:
            return i
    return len(sizes)


def _check_history(history: Sequence[Turn]) -> None:
    if not history or history[-1].role != "user":
        raise FormatError("a prompt history must end with the user's current message")
    if any(t.role == "system" for t in history):
        raise FormatError("pass the system text as `system`, not as a turn")


class ChatFormat(ABC):
    def __init__(self, tokenizer: Tokenizer, profile: ModelProfile):
        self.tokenizer = tokenizer
        self.profile = profile

    @abstractmethod
    def render_training(self, conversation: Conversation, max_seq_length: int) -> TrainingSample:
        """`input_ids` and `target_mask` for one conversation."""

    def measure_training(
        self, row: Row, lengths: Sequence[int], max_seq_length: int
    ) -> TrainingStats:
        """Truncation figures for a row whose contents (turns, then system) encode to
        `lengths` tokens. Formats that can count without rendering override this."""
        sample = self.render_training(row.to_conversation(), max_seq_length)
        return TrainingStats(
            sample.full_length,
            len(sample.input_ids),
            sum(sample.target_mask),
            sample.trained_tokens_lost,
        )

    @abstractmethod
    def render_prompt(
        self, history: Sequence[Turn], budget: int, system: str | None = None
    ) -> Prompt: ...

    _encoder: ContentEncoder

    def encode_contents(self, texts: Sequence[str]) -> list[Content]:
        """Neutralized, encoded contents (one tokenizer batch call)."""
        return self._encoder.encode_many(texts)

    def content_lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts of contents, as encode_contents would give them."""
        return [len(ids) for ids in self._encoder.encode_ids(texts)[1]]


class MarkerFormat(ChatFormat):
    def __init__(self, tokenizer: Tokenizer, profile: ModelProfile):
        super().__init__(tokenizer, profile)
        assert profile.user_token and profile.assistant_token
        self.bos_id = self._require("bos", tokenizer.bos_id)
        self.eos_id = self._require("eos", tokenizer.eos_id)
        self.user_id = self._require(profile.user_token, tokenizer.token_to_id(profile.user_token))
        self.assistant_id = self._require(
            profile.assistant_token, tokenizer.token_to_id(profile.assistant_token)
        )
        actual = {
            "bos": self.bos_id,
            "eos": self.eos_id,
            "user": self.user_id,
            "assistant": self.assistant_id,
        }
        wrong = {
            k: (actual[k], v)
            for k, v in profile.expected_ids.items()
            if k in actual and actual[k] != v
        }
        if wrong:
            detail = ", ".join(f"{k}={got} (expected {want})" for k, (got, want) in wrong.items())
            raise FormatError(
                f"tokenizer {tokenizer.name} does not match profile {profile.name}: {detail}"
            )
        self._strings = {
            i: tokenizer.id_to_token(i)
            for i in (self.bos_id, self.eos_id, self.user_id, self.assistant_id)
        }
        self._encoder = ContentEncoder(tokenizer, {s: i for i, s in self._strings.items()})

    def _require(self, what: str, token_id: int | None) -> int:
        if token_id is None:
            raise FormatError(
                f"tokenizer {self.tokenizer.name} has no {what} token, which profile"
                f" {self.profile.name} needs; pick the profile that matches the model"
            )
        return token_id

    def _turn_segment(self, turn: Turn, content: Content) -> tuple[list[int], list[int]]:
        if turn.role == "user":
            ids = [self.user_id, *content.ids]
            return ids, [0] * len(ids)
        ids = [self.assistant_id, *content.ids, self.eos_id]
        return ids, [0] + [turn.weight] * (len(ids) - 1)

    def _turn_text(self, turn: Turn, content: Content) -> str:
        if turn.role == "user":
            return self._strings[self.user_id] + content.text
        return self._strings[self.assistant_id] + content.text + self._strings[self.eos_id]

    def render_training(self, conversation: Conversation, max_seq_length: int) -> TrainingSample:
        turns = conversation.turns
        texts = [t.content for t in turns]
        if conversation.system:
            texts.append(conversation.system)
        contents = self.encode_contents(texts)
        head = [self.bos_id] + (contents[-1].ids if conversation.system else [])
        segments = [self._turn_segment(t, c) for t, c in zip(turns, contents, strict=False)]
        kept = _fit([len(ids) for ids, _ in segments], len(head), max_seq_length)
        input_ids, target_mask = list(head), [0] * len(head)
        for ids, mask in segments[:kept]:
            input_ids += ids
            target_mask += mask
        lost = sum(sum(mask) for _, mask in segments[kept:])
        full_length = len(head) + sum(len(ids) for ids, _ in segments)
        return TrainingSample(
            input_ids[:max_seq_length], target_mask[:max_seq_length], full_length, lost
        )

    def measure_training(
        self, row: Row, lengths: Sequence[int], max_seq_length: int
    ) -> TrainingStats:
        # _turn_segment's sizes without building it: user [user]+ids; assistant
        # [assistant]+ids+[eos], of which ids+eos train when the weight is 1. The stop rule
        # is _fit's (one loop here: this runs for every row of a validated file).
        full = kept = 1 + (lengths[len(row.roles)] if row.system else 0)
        trained_kept = lost = 0
        fits = True
        for role, k, w in zip(row.roles, lengths, row.weights, strict=False):
            size, trained = (k + 1, 0) if role == "user" else (k + 2, (k + 1) * w)
            full += size
            if fits and full <= max_seq_length:
                kept, trained_kept = full, trained_kept + trained
            else:
                fits, lost = False, lost + trained
        return TrainingStats(full, min(kept, max_seq_length), trained_kept, lost)

    def render_prompt(
        self, history: Sequence[Turn], budget: int, system: str | None = None
    ) -> Prompt:
        _check_history(history)
        texts = [t.content for t in history] + ([system] if system else [])
        contents = self.encode_contents(texts)
        head_ids = [self.bos_id]
        head_text = self._strings[self.bos_id]
        if system:
            head_ids += contents[-1].ids
            head_text += contents[-1].text
        segments = [self._turn_segment(t, c)[0] for t, c in zip(history, contents, strict=False)]
        rounds = _rounds(history)
        # The newest round is the current question plus the assistant marker that opens the answer.
        used = len(head_ids) + sum(len(segments[i]) for i in rounds[-1]) + 1
        if used > budget:
            raise PromptTooLong(used, budget)
        first = len(rounds) - 1
        while first > 0:
            size = sum(len(segments[i]) for i in rounds[first - 1])
            if used + size > budget:
                break
            used += size
            first -= 1
        kept = [i for r in rounds[first:] for i in r]
        ids = head_ids + [tid for i in kept for tid in segments[i]] + [self.assistant_id]
        text = (
            head_text
            + "".join(self._turn_text(history[i], contents[i]) for i in kept)
            + self._strings[self.assistant_id]
        )
        return Prompt(ids, text, turns_kept=len(kept), turns_dropped=len(history) - len(kept))


class TemplateFormat(ChatFormat):
    """Any model whose (fast) Hugging Face tokenizer carries a chat template."""

    def __init__(self, tokenizer: Tokenizer, profile: ModelProfile):
        super().__init__(tokenizer, profile)
        if not isinstance(tokenizer, HFTokenizer) or not tokenizer.chat_template:
            raise FormatError(
                f"profile {profile.name} needs a Hugging Face tokenizer with a chat template;"
                f" {tokenizer.name} has none"
            )
        if not tokenizer.is_fast:
            raise FormatError(f"profile {profile.name} needs a fast tokenizer (tokenizer.json)")
        self._hf: Any = tokenizer.backend
        self._encoder = ContentEncoder(tokenizer)

    def _messages(self, turns: Sequence[Turn], system: str | None) -> list[dict[str, str]]:
        texts = [t.content for t in turns] + ([system] if system else [])
        clean = [self._encoder.neutralize(t) for t in texts]
        messages = [{"role": "system", "content": clean[-1]}] if system else []
        return messages + [
            {"role": t.role, "content": c} for t, c in zip(turns, clean, strict=False)
        ]

    def _template(self, messages: list[dict[str, str]], *, generation: bool) -> str:
        return str(
            self._hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
        )

    def render_training(self, conversation: Conversation, max_seq_length: int) -> TrainingSample:
        messages = self._messages(conversation.turns, conversation.system)
        offset = 1 if conversation.system else 0
        full = self._template(messages, generation=False)
        spans: list[tuple[int, int]] = []  # trained character spans
        ends: list[int] = []  # character end of each message
        for k in range(len(messages)):
            upto = self._template(messages[: k + 1], generation=False)
            if not full.startswith(upto):
                raise FormatError("the chat template is not prefix-stable; cannot mask turns")
            ends.append(len(upto))
            turn = conversation.turns[k - offset] if k >= offset else None
            if turn is not None and turn.role == "assistant" and turn.weight == 1:
                before = self._template(messages[:k], generation=True)
                if not upto.startswith(before):
                    raise FormatError("the chat template's generation prompt is not a prefix")
                spans.append((len(before), len(upto)))
        enc = self._hf(full, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = list(enc["input_ids"])
        starts = [s for s, _ in enc["offset_mapping"]]
        mask = [int(any(a <= s < b for a, b in spans)) for s in starts]
        # Same rule as the marker format: keep whole messages while they fit.
        keep = 0
        for end in ends:
            n = sum(1 for s in starts if s < end)
            if n > max_seq_length:
                break
            keep = n
        keep = keep or min(len(ids), max_seq_length)
        lost = sum(mask[keep:])
        return TrainingSample(ids[:keep], mask[:keep], len(ids), lost)

    def render_prompt(
        self, history: Sequence[Turn], budget: int, system: str | None = None
    ) -> Prompt:
        _check_history(history)
        rounds = _rounds(history)
        for first in range(len(rounds)):
            kept = [i for r in rounds[first:] for i in r]
            text = self._template(
                self._messages([history[i] for i in kept], system), generation=True
            )
            ids = self.tokenizer.encode_text_form(text)
            if len(ids) <= budget:
                return Prompt(ids, text, len(kept), len(history) - len(kept))
        raise PromptTooLong(len(ids), budget)


@lru_cache(maxsize=16)
def chat_format(tokenizer: Tokenizer, profile: ModelProfile = DISC_MEDLLM) -> ChatFormat:
    """The format of `profile` bound to `tokenizer` (checked once, then cached)."""
    if profile.kind == "markers":
        return MarkerFormat(tokenizer, profile)
    return TemplateFormat(tokenizer, profile)


def render_training(
    conversation: Conversation,
    tokenizer: Tokenizer,
    max_seq_length: int,
    *,
    profile: ModelProfile = DISC_MEDLLM,
) -> TrainingSample:
    """`input_ids` and `target_mask` exactly as DISC-MedLLM's SFTDataset builds them."""
    return chat_format(tokenizer, profile).render_training(conversation, max_seq_length)


def render_prompt(
    history: Sequence[Turn],
    tokenizer: Tokenizer,
    budget: int,
    *,
    system: str | None = None,
    profile: ModelProfile = DISC_MEDLLM,
) -> Prompt:
    """The inference prompt (ids and text); oldest whole rounds dropped to fit `budget`."""
    return chat_format(tokenizer, profile).render_prompt(history, budget, system)
