"""Write a SentencePiece `tokenizer.model` as a Hugging Face `tokenizer.json` that encodes
exactly as SentencePiece does.

Baichuan-13B (so DISC-MedLLM) ships only `tokenizer.model`. An engine that loads its
tokenizer with `AutoTokenizer` (`transformers serve`) needs a `tokenizer.json`, and
transformers' own SentencePiece conversion assumes Llama's normalization (dummy prefix,
whitespace folding), so on Baichuan's model it counts different tokens than SentencePiece
(the engine canary sees it). This module reads the ModelProto with
sentencepiece_model.read_model (the fields decoded by hand: no protobuf runtime needed) and
rebuilds SentencePiece's pipeline from `tokenizers` parts:

- normalizer: the precompiled charsmap when the model has one (nmt_nfkc and the like;
  identity has none), whitespace folding only with `remove_extra_whitespaces`, the dummy
  prefix "▁" only with `add_dummy_prefix`, " " → "▁" with `escape_whitespaces`;
- model: BPE over every piece, with the merges SentencePiece performs (it joins two
  adjacent symbols whenever their concatenation is a piece, best score first, leftmost on
  ties), byte fallback and fused `<unk>` runs as SentencePiece; or Unigram with the
  pieces' scores;
- added tokens: user-defined pieces (Baichuan's `<reserved_N>`) are non-special added
  tokens matched in the normalized text, as SentencePiece matches them before BPE, so they
  are found even with `split_special_tokens=True`. Control pieces (`<s>`, `</s>`) and
  `<unk>` are special added tokens: SentencePiece's own `encode` never parses them (nor
  does this tokenizer with `split_special_tokens=True`), an engine's tokenizer does, as
  `SentencePieceTokenizer.encode_text_form` does;
- no pre-tokenizer and no post-processor: nothing is added on encode (Baichuan's
  tokenizer config has `add_bos_token` false);
- decoder: "▁" → " ", byte pieces → UTF-8, `<unk>` as SentencePiece's unknown surface
  (" ⁇ "), and with a dummy prefix the leading "▁" dropped as SentencePiece drops it.

Measured exact (tests/core/chatformat/test_sentencepiece_json.py: the corpus, hard cases,
a seeded fuzz, random id sequences) for BPE and Unigram, identity and nmt_nfkc, with and
without byte fallback and dummy prefix. What SentencePiece does that `tokenizers` cannot
express, and so stays different:
- dummy prefix with user-defined pieces: `tokenizers` normalizes an added token's own
  spelling with the tokenizer's normalizer, so the prefix is not added to a text that is
  exactly one user-defined piece (SentencePiece gives "▁", `<reserved_N>`; this gives
  `<reserved_N>`). Anywhere else in a text they agree. Baichuan has no dummy prefix;
- charsmap normalization (not identity): a character the charsmap rewrites followed by
  combining marks, under 6 bytes in all (`＜́`): `tokenizers`' Precompiled rewrites the
  whole grapheme by its first character's mapping, dropping the marks;
- Unigram only: equal-score segmentations (the same pieces in another order, "11"+"1"
  against "1"+"11") are tie-broken differently; a text spelling a byte piece (`<0x41>`)
  whose characters the model cannot encode can come out as that piece (`tokenizers`
  scores `<unk>` below every piece; SentencePiece keeps byte pieces out of its lattice);
- decoding ids that `encode` never yields: control ids print as `<s>`/`</s>` (SentencePiece
  drops them; `skip_special_tokens=True` drops them here); byte pieces that do not form
  UTF-8 become one U+FFFD each (SentencePiece keeps the valid bytes among them); with a
  dummy prefix, runs of four U+FDD0 or U+FDD1 in the text (the decoder's marks) do not
  come back;
- UNUSED pieces: SentencePiece re-splits a final UNUSED piece into the pair it was merged
  from; here it stays (trained models have none: `ConversionReport.unused_pieces`);
- BPE pieces with equal scores: SentencePiece merges the leftmost pair first, `tokenizers`
  the one ranked first (trained models score every piece apart:
  `ConversionReport.tied_scores`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .sentencepiece_model import (
    ModelProtoError,
    ModelType,
    NormalizerSpec,
    PieceType,
    SentencePieceModel,
    read_model,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer as HFTokenizerObject

SPACE_SYMBOL = "\u2581"  # ▁, SentencePiece's escaped space
# tokenizer_config.json keys of the source directory worth keeping (Baichuan's also names
# its remote tokenizer class and an auto_map, which must go: no remote code).
KEPT_CONFIG_KEYS = ("model_max_length", "chat_template", "padding_side", "truncation_side")


# One error for a file that is not a model and for a model that cannot be written as a
# tokenizer.json: read_model raises it too, so one `except ConversionError` covers both.
ConversionError = ModelProtoError


@dataclass(frozen=True)
class ConversionReport:
    """What the written tokenizer holds, and what of the model it cannot reproduce."""

    model_type: ModelType
    vocab_size: int
    merges: int
    byte_fallback: bool
    normalizer: str
    special_tokens: tuple[str, ...]
    user_defined: int
    unused_pieces: int
    tied_scores: int


# --- the tokenizers pipeline ---------------------------------------------------------------


def _check_supported(model: SentencePieceModel) -> None:
    if model.model_type not in (ModelType.BPE, ModelType.UNIGRAM):
        raise ConversionError(
            f"SentencePiece model_type {model.model_type.name} is not supported: only BPE and"
            " UNIGRAM models can be written as a tokenizer.json that encodes the same"
        )
    if model.treat_whitespace_as_suffix:
        raise ConversionError("treat_whitespace_as_suffix models are not supported")
    if model.denormalizer is not None and model.denormalizer.precompiled_charsmap:
        raise ConversionError("models with a denormalization rule are not supported")
    if len({p.piece for p in model.pieces}) != len(model.pieces):
        raise ConversionError("a piece is defined twice: not a valid SentencePiece model")
    model.unk_id()


def _bpe_merges(model: SentencePieceModel) -> tuple[list[tuple[str, str]], int]:
    """SentencePiece joins two adjacent symbols whenever their concatenation is a normal or
    unused piece (user-defined pieces are frozen: matched whole, before BPE), the
    best-scoring concatenation first. As ranked merges: every split of such a piece into two
    such pieces, ranked by the joined piece's score. Also returns how many of those pieces
    share their score with another (where the two can disagree: see the module docstring)."""
    mergeable = {
        p.piece: i
        for i, p in enumerate(model.pieces)
        if p.type in (PieceType.NORMAL, PieceType.UNUSED)
    }
    ranked: list[tuple[float, int, int, int]] = []
    for piece, piece_id in mergeable.items():
        score = model.pieces[piece_id].score
        for cut in range(1, len(piece)):
            left_id, right_id = mergeable.get(piece[:cut]), mergeable.get(piece[cut:])
            if left_id is not None and right_id is not None:
                ranked.append((-score, piece_id, left_id, right_id))
    ranked.sort()
    pieces = model.pieces
    scores = [pieces[i].score for i in mergeable.values() if len(pieces[i].piece) > 1]
    tied = len(scores) - len(set(scores))
    return [(pieces[left].piece, pieces[right].piece) for _, _, left, right in ranked], tied


def _onig_literal(text: str) -> str:
    """`text` as a literal in the Oniguruma syntax of `tokenizers.Regex`."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def _normalizer(spec: NormalizerSpec, user_defined: Sequence[str] = ()) -> Any:
    """SentencePiece's Normalizer::Normalize as a `tokenizers` normalizer (None: nothing).

    SentencePiece: charsmap, then (with whitespace folding) no leading spaces, the dummy
    prefix, runs of spaces as one, spaces escaped as "▁", no trailing "▁" (even one that was
    in the input). `tokenizers` normalizes the spelling of normalized added tokens (the
    user-defined pieces) with this same normalizer before matching them in the normalized
    text, so with user-defined pieces the dummy prefix goes to every text but one that is
    exactly a user-defined spelling."""
    from tokenizers import Regex, normalizers

    steps: list[Any] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        # Only ASCII spaces (all the charsmap leaves), not tabs or newlines.
        steps.append(normalizers.Replace(Regex(" {2,}"), " "))
        # \A and \z: Oniguruma's ^ and $ also match at line breaks.
        steps.append(normalizers.Replace(Regex("\\A | \\z"), ""))
    if spec.add_dummy_prefix:
        if user_defined:
            before = normalizers.Sequence(list(steps))
            spellings = sorted({before.normalize_str(s) for s in user_defined}, key=len)
            alternatives = "|".join(_onig_literal(s) for s in reversed(spellings) if s)
            lone_piece = Regex(f"\\A(?!(?:{alternatives})\\z)(?=[\\s\\S])")
            steps.append(normalizers.Replace(lone_piece, " "))
        else:
            steps.append(normalizers.Prepend(" "))  # non-empty text only, as SentencePiece
    if spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", SPACE_SYMBOL))
        if spec.remove_extra_whitespaces:
            steps.append(normalizers.Replace(Regex(SPACE_SYMBOL + "+\\z"), ""))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else normalizers.Sequence(steps)


# Marks the decoder puts in place of a lone "▁" token and of `<unk>` until the text is
# fused: noncharacters, which no text is expected to hold, each its own, four times over.
_LONE_SPACE_MARK = "\ufdd0" * 4
_UNK_MARK = "\ufdd1" * 4


def _decoder(model: SentencePieceModel) -> Any:
    """SentencePiece's decoding: "▁" as " ", byte pieces as UTF-8, `<unk>` as its surface.

    With a dummy prefix SentencePiece also drops the "▁" that starts the text: one from
    each leading piece for as long as the output is still empty (so a lone "▁" piece and
    then "▁a" give "a", "▁▁" then "a" give " a", `<unk>` first keeps " ⁇ "). `tokenizers`
    decoders work on each token or on the fused text, so the lone "▁" tokens and `<unk>`
    are marked token by token, the leading ones dropped from the fused text, then the marks
    replaced."""
    from tokenizers import Regex, decoders

    unk = model.pieces[model.unk_id()].piece
    if not model.normalizer.add_dummy_prefix:
        return decoders.Sequence(
            [
                decoders.Replace(unk, model.unk_surface),  # per token: the <unk> token only
                decoders.Replace(SPACE_SYMBOL, " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
            ]
        )
    lone = _onig_literal(_LONE_SPACE_MARK)
    return decoders.Sequence(
        [
            decoders.Replace(unk, _UNK_MARK),
            decoders.Replace(Regex(f"\\A{SPACE_SYMBOL}\\z"), _LONE_SPACE_MARK),
            decoders.Replace(SPACE_SYMBOL, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Replace(Regex(f"\\A(?:{lone})* ?"), ""),
            decoders.Replace(_LONE_SPACE_MARK, " "),
            decoders.Replace(_UNK_MARK, model.unk_surface),
        ]
    )


def _unigram_vocab(model: SentencePieceModel) -> list[tuple[str, float]]:
    """Pieces and scores. SentencePiece's lattice leaves out control, unknown, byte and
    unused pieces; `tokenizers` has every piece in its trie, so those get a score below any
    segmentation of their spelling into normal pieces (not below `<unk>`, whose score
    `tokenizers` derives from the lowest piece score: see the module docstring)."""
    reachable = (PieceType.NORMAL, PieceType.USER_DEFINED)
    lowest = min((p.score for p in model.pieces if p.type in reachable), default=0.0)
    longest = max((len(p.piece) for p in model.pieces if p.type not in reachable), default=0)
    unreachable = (longest + 1) * min(lowest, 0.0) - 100.0
    return [(p.piece, p.score if p.type in reachable else unreachable) for p in model.pieces]


def build_tokenizer(model: SentencePieceModel) -> tuple[HFTokenizerObject, ConversionReport]:
    """The `tokenizers.Tokenizer` that encodes like `model`, and what it holds."""
    from tokenizers import AddedToken, Tokenizer, models

    _check_supported(model)
    unk_id = model.unk_id()
    byte_fallback = model.byte_fallback and any(p.type == PieceType.BYTE for p in model.pieces)
    merges: list[tuple[str, str]] = []
    tied = 0
    hf_model: Any
    if model.model_type == ModelType.BPE:
        merges, tied = _bpe_merges(model)
        hf_model = models.BPE(
            vocab={p.piece: i for i, p in enumerate(model.pieces)},
            merges=merges,
            unk_token=model.pieces[unk_id].piece,
            fuse_unk=True,
            byte_fallback=byte_fallback,
        )
    else:
        hf_model = models.Unigram(_unigram_vocab(model), unk_id, byte_fallback)
    tok = Tokenizer(hf_model)
    specials = model.pieces_of(PieceType.CONTROL, PieceType.UNKNOWN)
    user_defined = model.pieces_of(PieceType.USER_DEFINED)
    tok.normalizer = _normalizer(model.normalizer, user_defined)
    tok.decoder = _decoder(model)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken(s, special=False, normalized=True) for s in user_defined])
    spec = model.normalizer
    report = ConversionReport(
        model_type=model.model_type,
        vocab_size=len(model.pieces),
        merges=len(merges),
        byte_fallback=byte_fallback,
        normalizer=spec.name or ("precompiled" if spec.precompiled_charsmap else "identity"),
        special_tokens=tuple(specials),
        user_defined=len(user_defined),
        unused_pieces=len(model.pieces_of(PieceType.UNUSED)),
        tied_scores=tied,
    )
    return tok, report


def _model_file(path: Path) -> Path:
    return path / "tokenizer.model" if path.is_dir() else path


def sentencepiece_to_tokenizer_json(model_file: Path) -> HFTokenizerObject:
    """The `tokenizers.Tokenizer` equivalent of a SentencePiece model (a `tokenizer.model`
    file, or a directory holding one). `.to_str()` gives the tokenizer.json text."""
    return build_tokenizer(read_model(_model_file(Path(model_file)).read_bytes()))[0]


def special_tokens(model: SentencePieceModel) -> dict[str, str]:
    """bos/eos/unk/pad token names for transformers: the trainer's pieces where they exist
    as control pieces; padding with `<unk>` when there is no pad piece, as Baichuan does
    (pad_token_id 0)."""
    unk = model.pieces[model.unk_id()].piece
    out = {"unk_token": unk}
    for key, piece in (("bos_token", model.bos_piece), ("eos_token", model.eos_piece)):
        if model.piece_id(piece, PieceType.CONTROL) is not None:
            out[key] = piece
    has_pad = model.piece_id(model.pad_piece, PieceType.CONTROL) is not None
    out["pad_token"] = model.pad_piece if has_pad else unk
    return out


def tokenizer_config(
    model: SentencePieceModel, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """tokenizer_config.json for the generic fast tokenizer class: nothing added on encode,
    no clean-up of spaces on decode (SentencePiece does none), the special tokens by name;
    `base` (the source directory's config) contributes only KEPT_CONFIG_KEYS."""
    config: dict[str, Any] = {k: base[k] for k in KEPT_CONFIG_KEYS if base and k in base}
    config.update(
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": False,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            **special_tokens(model),
        }
    )
    return config


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_fast_tokenizer(model_dir: Path, out_dir: Path) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into
    `out_dir`, from `model_dir/tokenizer.model` (or `model_dir` itself when it is the .model
    file). `out_dir` may be `model_dir`: a tokenizer_config.json there is replaced, keeping
    only KEPT_CONFIG_KEYS (no auto_map, no remote tokenizer class). Returns the
    tokenizer.json path."""
    model_file = _model_file(Path(model_dir))
    model = read_model(model_file.read_bytes())
    tok, _report = build_tokenizer(model)
    base: dict[str, Any] | None = None
    source_config = model_file.parent / "tokenizer_config.json"
    if source_config.is_file():
        loaded = json.loads(source_config.read_text(encoding="utf-8"))
        base = loaded if isinstance(loaded, dict) else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "tokenizer.json"
    tok.save(str(target))
    _write_json(out / "tokenizer_config.json", tokenizer_config(model, base))
    _write_json(out / "special_tokens_map.json", special_tokens(model))
    return target
