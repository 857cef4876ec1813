"""services/core/chatformat/sentencepiece_json.py: a SentencePiece model written as a
tokenizer.json must encode and decode exactly as SentencePiece does.

Six models are trained here from the DISC-MedLLM examples (about a second each): the
Baichuan-shaped one (BPE, byte fallback, identity, no dummy prefix, user-defined markers),
the same without byte fallback, the same with a dummy prefix and whitespace folding, a
Llama-style BPE (nmt_nfkc, dummy prefix, folding, byte fallback, no user-defined pieces),
and two Unigram models. Each is compared with `sentencepiece` on the corpus, hard cases and
a seeded fuzz; the ones with Baichuan's ids also through the project's loaders and the
disc-medllm chat format. The differences `tokenizers` cannot avoid are pinned in
`test_known_differences` (and listed in the module docstring).
"""

from __future__ import annotations

import io
import json
import random
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm

from services.core.chatformat import Turn, chat_format, get_profile, load_tokenizer
from services.core.chatformat.conversation import Conversation
from services.core.chatformat.render import Prompt
from services.core.chatformat.sentencepiece_json import (
    SPACE_SYMBOL,
    ConversionError,
    build_tokenizer,
    sentencepiece_to_tokenizer_json,
    special_tokens,
    write_fast_tokenizer,
)
from services.core.chatformat.sentencepiece_model import (
    ModelType,
    PieceType,
    SentencePieceModel,
    piece_types,
    read_model,
)
from services.core.chatformat.tokenizer import HFTokenizer, SentencePieceTokenizer
from services.core.devtools.tiny_tokenizer import MARKER_PIECES, build_tiny_tokenizer
from services.gateway.engine.canary import CANARY
from tests.support.third_party_tokenizers import build_sp_no_byte_fallback
from tests.support.tokenizers import corpus

PROFILE = get_profile("disc-medllm")
CONTROL_SPELLINGS = ("<s>", "</s>", "<unk>")
HARD_TEXTS = [
    "",
    " ",
    "   ",
    " leading",
    "trailing ",
    "  two  spaces  inside  ",
    "\t",
    "tab\there",
    "line\nbreak\r\nwindows\n\n\n",
    " \n \t \n ",
    "🩺🤒👩🏽‍⚕️",
    "𠀀𪚥𰻞",
    "ＡＢＣ１２３（全角）",
    "e\u0301 a\u0308 n\u0303",  # combining marks on plain letters
    "é à ñ",
    "\u200b\u200d\ufeff\u00a0\u3000",
    "\x00\x07\x1b",
    "ﬁ ㍿ Ⅻ … ½",
    "שלום مرحبا\u202eبالطبيب\u202c",
    "<reserved_102>",
    "a<reserved_102>b",
    " <reserved_102> ",
    "<reserved_102><reserved_103>",
    "问<reserved_103>答</s>",
    "＜reserved_102＞ ＜/s＞",
    "</s>",
    "<s>hi</s>",
    "x<unk>y",
    "<0x41><0xE4>",
    SPACE_SYMBOL,
    f"{SPACE_SYMBOL}a{SPACE_SYMBOL}",
    f"  {SPACE_SYMBOL} ",
    "111111 。。。。 ———— aaaa",
    *(turn.content for turn in CANARY),
]
# Characters the fuzz mixes with the models' own pieces.
FUZZ_EXTRA = [*" \t\n\r\u3000𠀀😀ＡＢ½…", SPACE_SYMBOL]
# A byte piece's spelling: Unigram models may take it as that piece (known difference).
BYTE_SPELLING = re.compile("<0x[0-9A-F]{2}>")


def _train(out_dir: Path, **options: Any) -> Path:
    """A SentencePiece model trained on the corpus; Baichuan's ids unless overridden."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    args: dict[str, Any] = {
        "sentence_iterator": corpus(),
        "model_writer": model,
        "vocab_size": 3000,
        "unk_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "pad_id": -1,
        "character_coverage": 0.9995,
        "minloglevel": 2,
    }
    args.update(options)
    spm.SentencePieceTrainer.train(**args)
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    return out_dir


BUILDERS: dict[str, Callable[[Path], Path]] = {
    # DISC-MedLLM's shape: BPE, byte fallback, identity, no dummy prefix, markers.
    "baichuan": lambda d: build_tiny_tokenizer(d, corpus()),
    "no_byte_fallback": build_sp_no_byte_fallback,
    "dummy_prefix": lambda d: build_tiny_tokenizer(d, corpus(), add_dummy_prefix=True),
    "llama": lambda d: _train(
        d, model_type="bpe", byte_fallback=True, normalization_rule_name="nmt_nfkc"
    ),
    "unigram": lambda d: _train(
        d,
        model_type="unigram",
        byte_fallback=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        user_defined_symbols=MARKER_PIECES,
        hard_vocab_limit=False,
    ),
    "unigram_nfkc": lambda d: _train(
        d, model_type="unigram", user_defined_symbols=MARKER_PIECES, hard_vocab_limit=False
    ),
}
# Models with Baichuan's ids (<reserved_102> = 195...): the disc-medllm format applies.
MARKER_MODELS = ("baichuan", "no_byte_fallback", "dummy_prefix", "unigram", "unigram_nfkc")


@dataclass
class Converted:
    name: str
    model_dir: Path
    hf_dir: Path
    sp: Any  # spm.SentencePieceProcessor
    hf: Any  # the transformers tokenizer AutoTokenizer loads from hf_dir
    model: SentencePieceModel

    @property
    def proto(self) -> bytes:
        return (self.model_dir / "tokenizer.model").read_bytes()

    @cached_property
    def types(self) -> list[PieceType]:
        return [p.type for p in self.model.pieces]

    @cached_property
    def user_defined(self) -> frozenset[str]:
        return frozenset(self.model.pieces_of(PieceType.USER_DEFINED))

    @property
    def unigram(self) -> bool:
        return self.model.model_type == ModelType.UNIGRAM

    @property
    def dummy_prefix(self) -> bool:
        return self.model.normalizer.add_dummy_prefix


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Converted]:
    """Train, write and load a model once per test module (tests ask for it by name)."""
    from transformers import AutoTokenizer

    cache: dict[str, Converted] = {}

    def get(name: str) -> Converted:
        if name not in cache:
            root = tmp_path_factory.mktemp(name)
            model_dir = BUILDERS[name](root / "model")
            hf_dir = root / "hf"
            write_fast_tokenizer(model_dir, hf_dir)
            model_file = model_dir / "tokenizer.model"
            sp = spm.SentencePieceProcessor(model_file=str(model_file))
            hf = AutoTokenizer.from_pretrained(str(hf_dir))
            model = read_model(model_file.read_bytes())
            cache[name] = Converted(name, model_dir, hf_dir, sp, hf, model)
        return cache[name]

    return get


def _lone_user_defined(c: Converted, text: str) -> bool:
    """A text that normalizes to exactly one user-defined piece, under a dummy prefix: the
    one encoding difference of BPE models (see test_known_differences)."""
    if not c.dummy_prefix or not c.user_defined:
        return False
    return str(c.sp.normalize(text)).removeprefix(SPACE_SYMBOL) in c.user_defined


def _fuzz(c: Converted, n: int, seed: int) -> Iterator[str]:
    """Seeded texts mixing the model's pieces (spaces as " " or "▁") with the corpus's
    characters and rare ones: every merge, byte fallback and whitespace path gets hit."""
    rnd = random.Random(seed)
    types = c.types
    spelled = [PieceType.NORMAL, PieceType.USER_DEFINED, PieceType.CONTROL, PieceType.UNKNOWN]
    if not c.unigram:  # Unigram models may take a byte piece's spelling as that piece
        spelled.append(PieceType.BYTE)
    pieces = [c.sp.id_to_piece(i) for i, t in enumerate(types) if t in spelled]
    chars = sorted({ch for text in corpus() for ch in text}) + FUZZ_EXTRA
    if c.model.normalizer.precompiled_charsmap:
        # tokenizers' Precompiled drops marks after a rewritten character (known difference)
        chars = [ch for ch in chars if not unicodedata.combining(ch)]
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 24)):
            if rnd.random() < 0.5:
                piece = rnd.choice(pieces)
                parts.append(piece.replace(SPACE_SYMBOL, " ") if rnd.random() < 0.8 else piece)
            else:
                parts.append(rnd.choice(chars) * rnd.choice((1, 1, 1, 2, 5)))
        text = "".join(parts)
        if not _lone_user_defined(c, text):
            yield text


def _texts(c: Converted, fuzz: int = 1500) -> list[str]:
    texts = [*corpus(), "".join(corpus()), *HARD_TEXTS, *_fuzz(c, fuzz, seed=len(c.name))]
    return [
        t
        for t in texts
        if not _lone_user_defined(c, t) and not (c.unigram and BYTE_SPELLING.search(t))
    ]


def _unigram_tie(c: Converted, expected: list[int], got: list[int]) -> bool:
    """Two Unigram segmentations of the same text with the same total score: SentencePiece
    and tokenizers break such ties differently (e.g. "11"+"1" against "1"+"11")."""
    scores = [p.score for p in c.model.pieces]
    same_text = str(c.sp.decode(expected)) == str(c.sp.decode(got))
    gap = abs(sum(scores[i] for i in expected) - sum(scores[i] for i in got))
    return same_text and gap < 1e-4 * max(1, len(expected))


def _mismatches(
    c: Converted, texts: Sequence[str], expected: list[list[int]], got: list[list[int]]
) -> list[tuple[str, list[str], list[str]]]:
    out = []
    for text, want, have in zip(texts, expected, got, strict=True):
        if want != have and not (c.unigram and _unigram_tie(c, want, have)):
            out.append((text, c.sp.id_to_piece(want), c.sp.id_to_piece(have)))
    return out


ALL = pytest.mark.parametrize("name", list(BUILDERS))
MARKERS = pytest.mark.parametrize("name", MARKER_MODELS)


@ALL
def test_reads_the_model_as_protobuf_does(name: str, converted: Callable[[str], Converted]) -> None:
    pb2 = pytest.importorskip("sentencepiece.sentencepiece_model_pb2")
    c = converted(name)
    proto = pb2.ModelProto()
    proto.ParseFromString(c.proto)
    model = read_model(c.proto)
    assert [(p.piece, p.score, int(p.type)) for p in model.pieces] == [
        (p.piece, p.score, p.type) for p in proto.pieces
    ]
    assert piece_types(c.proto) == [p.type for p in proto.pieces]
    assert model.model_type == proto.trainer_spec.model_type
    assert model.byte_fallback == proto.trainer_spec.byte_fallback
    assert model.unk_surface == proto.trainer_spec.unk_surface
    spec, pb_spec = model.normalizer, proto.normalizer_spec
    assert (spec.name, spec.precompiled_charsmap) == (pb_spec.name, pb_spec.precompiled_charsmap)
    assert (spec.add_dummy_prefix, spec.remove_extra_whitespaces, spec.escape_whitespaces) == (
        pb_spec.add_dummy_prefix,
        pb_spec.remove_extra_whitespaces,
        pb_spec.escape_whitespaces,
    )


@ALL
def test_report(name: str, converted: Callable[[str], Converted]) -> None:
    c = converted(name)
    model = read_model(c.proto)
    tok, report = build_tokenizer(model)
    assert report.vocab_size == c.sp.get_piece_size() == tok.get_vocab_size()
    assert report.unused_pieces == 0
    assert report.byte_fallback == any(c.sp.is_byte(i) for i in range(c.sp.get_piece_size()))
    if report.model_type == ModelType.BPE:
        assert report.merges > 0
        assert report.tied_scores == 0  # trained BPE scores every piece apart
    assert set(report.special_tokens) == set(CONTROL_SPELLINGS)
    for i in range(c.sp.get_piece_size()):  # every id means the same piece
        assert c.hf.convert_ids_to_tokens(i) == c.sp.id_to_piece(i)


@ALL
def test_encodes_like_sentencepiece(name: str, converted: Callable[[str], Converted]) -> None:
    c = converted(name)
    texts = _texts(c)
    expected = c.sp.encode(texts)
    # Content: special-token spellings are never parsed, as SentencePiece never parses them.
    content = c.hf(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert _mismatches(c, texts, expected, content)[:5] == []
    # The plain call an engine makes: the same wherever no control piece is spelled out...
    plain = c.hf(texts, add_special_tokens=True)["input_ids"]  # adds nothing: no BOS
    no_control = [i for i, t in enumerate(texts) if not any(s in t for s in CONTROL_SPELLINGS)]
    assert len(no_control) > len(texts) // 2
    pick = [texts[i] for i in no_control]
    assert (
        _mismatches(c, pick, [expected[i] for i in no_control], [plain[i] for i in no_control])[:5]
        == []
    )
    # ...and where one is, the control pieces are parsed as the project's text form does.
    text_form = SentencePieceTokenizer(c.model_dir / "tokenizer.model")
    with_control = [t for t in texts if any(s in t for s in CONTROL_SPELLINGS)]
    assert with_control
    assert (
        _mismatches(
            c,
            with_control,
            [text_form.encode_text_form(t) for t in with_control],
            c.hf(with_control, add_special_tokens=False)["input_ids"],
        )[:5]
        == []
    )


@ALL
def test_decodes_like_sentencepiece(name: str, converted: Callable[[str], Converted]) -> None:
    c = converted(name)
    texts = _texts(c, fuzz=500)
    wrong = [
        (t, c.hf.decode(ids), c.sp.decode(ids))
        for t, ids in zip(texts, c.sp.encode(texts), strict=True)
        if c.hf.decode(ids) != c.sp.decode(ids)
    ]
    assert wrong[:5] == []
    # Any sequence of normal and user-defined pieces, "▁" pieces, <unk> and whole
    # characters in byte pieces, also ones encode would not give (decoded with <unk>, as
    # the project's loader does: it never skips special tokens).
    types = c.types
    ids = [i for i, t in enumerate(types) if t in (PieceType.NORMAL, PieceType.USER_DEFINED)]
    spaces = [i for i in ids if set(c.sp.id_to_piece(i)) == {SPACE_SYMBOL}]
    unk = types.index(PieceType.UNKNOWN)
    byte_ids = {c.sp.id_to_piece(i): i for i, t in enumerate(types) if t == PieceType.BYTE}
    rnd = random.Random(0)
    for _ in range(2000):
        seq: list[int] = []
        for _ in range(rnd.randint(1, 10)):
            pick = rnd.random()
            if pick < 0.15:
                seq.append(unk)
            elif pick < 0.35:
                seq.append(rnd.choice(spaces))
            elif pick < 0.45 and byte_ids:
                char = rnd.choice("é𠀀😀\t\x00")
                seq += [byte_ids[f"<0x{b:02X}>"] for b in char.encode()]
            else:
                seq.append(rnd.choice(ids))
        assert c.hf.decode(seq) == c.sp.decode(seq), c.sp.id_to_piece(seq)
    # Control ids are dropped when asked to.
    assert c.hf.decode([1, *c.sp.encode("头痛"), 2], skip_special_tokens=True) == "头痛"


@MARKERS
def test_project_loaders_agree(name: str, converted: Callable[[str], Converted]) -> None:
    c = converted(name)
    hf, sp = load_tokenizer(c.hf_dir), load_tokenizer(c.model_dir)
    assert isinstance(hf, HFTokenizer) and isinstance(sp, SentencePieceTokenizer)
    assert (hf.vocab_size, hf.bos_id, hf.eos_id) == (sp.vocab_size, sp.bos_id, sp.eos_id)
    assert hf.special_ids == sp.special_ids
    for piece in ("<s>", "</s>", "<unk>", "<reserved_102>", "<reserved_103>", "▁", "<0x41>"):
        assert hf.token_to_id(piece) == sp.token_to_id(piece), piece
    texts = _texts(c, fuzz=500)
    want = sp.encode_batch(texts)
    assert _mismatches(c, texts, want, hf.encode_batch(texts))[:5] == []
    assert (
        _mismatches(
            c,
            texts,
            [sp.encode_text_form(t) for t in texts],
            [hf.encode_text_form(t) for t in texts],
        )[:5]
        == []
    )
    assert [hf.decode(ids) for ids in want] == [sp.decode(ids) for ids in want]


def _dialogues(c: Converted) -> list[tuple[str | None, list[Turn]]]:
    usable = set(_texts(c, fuzz=0))
    hard = [t for t in HARD_TEXTS if t.strip() and t in usable]
    turns: list[Turn] = []
    for question, answer in zip(hard[::2], hard[1::2], strict=False):
        turns += [Turn(role="user", content=question), Turn(role="assistant", content=answer)]
    turns.append(Turn(role="user", content="最后的问题？"))
    return [
        (None, list(CANARY)),
        ("你是一个医生。<reserved_103></s>", list(CANARY)),
        ("  system  text  ", turns),
        *((None, [Turn(role="user", content=t)]) for t in ("", "  ", "<reserved_102>", "</s>")),
    ]


def _prompt(tok: Any, system: str | None, history: list[Turn], budget: int) -> Prompt:
    return chat_format(tok, PROFILE).render_prompt(history, budget, system)


@MARKERS
def test_chat_format_agrees(name: str, converted: Callable[[str], Converted]) -> None:
    c = converted(name)
    hf, sp = load_tokenizer(c.hf_dir), load_tokenizer(c.model_dir)
    for system, history in _dialogues(c):
        for budget in (10_000, 120):
            want = _prompt(sp, system, history, budget)
            got = _prompt(hf, system, history, budget)
            if c.unigram and got != want:  # the same prompt, an equal-score segmentation
                assert (got.text, got.turns_kept) == (want.text, want.turns_kept)
                assert _unigram_tie(c, want.input_ids, got.input_ids)
            else:
                assert got == want
            if not c.dummy_prefix:
                # The engine canary: the engine's tokenizer (AutoTokenizer on the written
                # directory, special tokens on as an engine leaves them) reads the text form
                # back to the very ids the prompt was rendered to. (With a dummy prefix the
                # text form cannot give the id form, through SentencePiece either: what the
                # canary exists to catch.)
                assert c.hf(want.text)["input_ids"] == want.input_ids
        conversation = Conversation(turns=tuple(history), system=system)
        if len(history) > 1 and not c.unigram:  # (Unigram: ties, as above)
            for length in (4096, 64):
                assert chat_format(hf, PROFILE).render_training(
                    conversation, length
                ) == chat_format(sp, PROFILE).render_training(conversation, length)


def test_canary_counts_match(converted: Callable[[str], Converted]) -> None:
    """The DISC-MedLLM-shaped model: the canary prompt counts the same through the written
    tokenizer as through SentencePiece (transformers' own conversion did not)."""
    c = converted("baichuan")
    prompt = _prompt(load_tokenizer(c.model_dir), None, list(CANARY), 10_000)
    assert len(c.hf(prompt.text)["input_ids"]) == len(prompt.input_ids)
    assert c.hf(prompt.text)["input_ids"] == prompt.input_ids


def test_known_differences(converted: Callable[[str], Converted]) -> None:
    """What `tokenizers` cannot express (module docstring). If one of these starts to
    agree, a tokenizers upgrade fixed it: update the docstring and drop the line here."""
    # A dummy prefix before a text that is exactly one user-defined piece.
    c = converted("dummy_prefix")
    assert c.sp.id_to_piece(c.sp.encode("<reserved_102>")) == [SPACE_SYMBOL, "<reserved_102>"]
    assert c.hf("<reserved_102>", add_special_tokens=False)["input_ids"] == [195]
    # ...anywhere else in a text it agrees.
    assert c.hf("问<reserved_102>", add_special_tokens=False)["input_ids"] == c.sp.encode(
        "问<reserved_102>"
    )
    # Charsmap normalization: marks after a rewritten character in a short grapheme.
    c = converted("llama")
    assert c.sp.normalize("：\u0301") == SPACE_SYMBOL + ":\u0301"
    assert c.hf.decode(c.hf("：\u0301", add_special_tokens=False)["input_ids"]) == ":"
    assert c.hf("e\u0301", add_special_tokens=False)["input_ids"] == c.sp.encode("e\u0301")
    # Decoding byte pieces that are not UTF-8: tokenizers replaces the whole run.
    c = converted("baichuan")
    ids = [c.sp.piece_to_id("<0xE4>"), c.sp.piece_to_id("<0x41>")]
    assert (c.sp.decode(ids), c.hf.decode(ids)) == ("\ufffdA", "\ufffd\ufffd")
    # Control ids: SentencePiece decodes them to nothing.
    assert (c.sp.decode([1, 2]), c.hf.decode([1, 2])) == ("", "<s></s>")
    # Unigram: a byte piece's spelling holding a character the model cannot encode.
    c = converted("unigram")
    x_unknown = c.sp.encode("x") == [c.sp.piece_to_id("<0x78>")]
    spelled = c.hf("<0x41>", add_special_tokens=False)["input_ids"]
    assert (spelled == [c.sp.piece_to_id("<0x41>")]) == x_unknown
    assert (spelled == c.sp.encode("<0x41>")) == (not x_unknown)


def test_written_directory(tmp_path: Path, converted: Callable[[str], Converted]) -> None:
    """Written next to Baichuan's own files: its remote-code config is replaced (keeping
    model_max_length), and AutoTokenizer loads the directory without remote code."""
    from transformers import AutoTokenizer

    c = converted("baichuan")
    model_dir = tmp_path / "DISC-MedLLM"
    model_dir.mkdir()
    (model_dir / "tokenizer.model").write_bytes(c.proto)
    baichuan_config = {
        "auto_map": {"AutoTokenizer": ["tokenization_baichuan.BaichuanTokenizer", None]},
        "tokenizer_class": "BaichuanTokenizer",
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 4096,
        "sp_model_kwargs": {},
        "bos_token": {"__type": "AddedToken", "content": "<s>", "normalized": True},
    }
    (model_dir / "tokenizer_config.json").write_text(json.dumps(baichuan_config))
    assert write_fast_tokenizer(model_dir, model_dir) == model_dir / "tokenizer.json"
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert "auto_map" not in config and config["model_max_length"] == 4096
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    special = json.loads((model_dir / "special_tokens_map.json").read_text())
    assert special == {
        "unk_token": "<unk>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<unk>",
    }
    tok: Any = AutoTokenizer.from_pretrained(str(model_dir))
    assert tok.model_max_length == 4096
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.pad_token_id) == (1, 2, 0, 0)
    assert tok("头痛")["input_ids"] == c.sp.encode("头痛")  # no BOS added
    assert tok(["头痛"], padding=False)["input_ids"] == [c.sp.encode("头痛")]
    assert isinstance(load_tokenizer(model_dir), HFTokenizer)
    # The file and the directory give the same tokenizer.json.
    from_file = sentencepiece_to_tokenizer_json(model_dir / "tokenizer.model").to_str()
    assert from_file == sentencepiece_to_tokenizer_json(model_dir).to_str()
    written = json.loads(from_file)
    assert (written["pre_tokenizer"], written["post_processor"]) == (None, None)
    # Identity, no dummy prefix, no folding: only spaces are escaped.
    assert written["normalizer"] == {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}


def test_special_tokens_with_a_pad_piece(tmp_path: Path) -> None:
    model = read_model(
        _train(tmp_path, model_type="bpe", pad_id=3).joinpath("tokenizer.model").read_bytes()
    )
    assert special_tokens(model)["pad_token"] == "<pad>"


@pytest.mark.parametrize("model_type", ["char", "word"])
def test_refuses_other_model_types(tmp_path: Path, model_type: str) -> None:
    model_dir = _train(tmp_path, model_type=model_type, vocab_size=3000, hard_vocab_limit=False)
    with pytest.raises(ConversionError, match=model_type.upper()):
        write_fast_tokenizer(model_dir, tmp_path / "out")
    assert not (tmp_path / "out" / "tokenizer.json").exists()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xff\xff",
        b"not a model at all",
        b"\x0a\x05abc",
        b"\x0a\x09\x0a\x01a\x10\x80\x80\x80\x80\x10",  # a piece score as a 33-bit varint
    ],
)
def test_refuses_what_is_not_a_model(data: bytes) -> None:
    with pytest.raises(ConversionError):
        build_tokenizer(read_model(data))
    with pytest.raises(ValueError):  # what tokenizer.py turns into a TokenizerLoadError
        piece_types(data)
