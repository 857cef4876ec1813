from __future__ import annotations

from pathlib import Path

import pytest
import sentencepiece as spm

from services.core.chatformat import TokenizerLoadError, load_tokenizer
from services.core.chatformat.sentencepiece_model import PieceType, piece_types
from services.core.chatformat.tokenizer import HFTokenizer, SentencePieceTokenizer


def test_bare_sentencepiece_dir_has_baichuan_ids(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    assert isinstance(tok, SentencePieceTokenizer)
    assert (tok.bos_id, tok.eos_id) == (1, 2)
    assert tok.token_to_id("<reserved_102>") == 195
    assert tok.token_to_id("<reserved_103>") == 196
    assert tok.id_to_token(0) == "<unk>"
    assert tok.token_to_id("<no such piece>") is None
    # Byte fallback: no character can become <unk>.
    assert tok.unk_id is None
    assert {0, 1, 2, 195, 196} <= tok.special_ids
    assert "<reserved_103>" in tok.special_strings and "</s>" in tok.special_strings


def test_piece_types_match_sentencepiece(sp_dir: Path) -> None:
    proto = (sp_dir / "tokenizer.model").read_bytes()
    sp = spm.SentencePieceProcessor(model_proto=proto)
    types = piece_types(proto)
    assert len(types) == sp.get_piece_size()
    for i, t in enumerate(types):
        assert (t == PieceType.CONTROL) == sp.is_control(i)
        assert (t == PieceType.BYTE) == sp.is_byte(i)
        assert (t == PieceType.UNKNOWN) == sp.is_unknown(i)
    assert types[195] == PieceType.USER_DEFINED


def test_content_encoding_adds_no_bos(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    sp = spm.SentencePieceProcessor(model_file=str(sp_dir / "tokenizer.model"))
    assert tok.encode("头痛三天") == sp.encode("头痛三天")
    assert tok.encode("") == []
    assert tok.encode_batch(["头痛", "发烧"]) == [sp.encode("头痛"), sp.encode("发烧")]


def test_text_form_parses_control_strings(sp_dir: Path) -> None:
    tok = load_tokenizer(sp_dir)
    ids = tok.encode_text_form("<s><reserved_102>头痛<reserved_103>休息</s>")
    assert ids == [1, 195, *tok.encode("头痛"), 196, *tok.encode("休息"), 2]


def test_hf_directory(hf_marker_dir: Path, chatml_dir: Path) -> None:
    tok = load_tokenizer(hf_marker_dir)
    assert isinstance(tok, HFTokenizer)
    assert (tok.bos_id, tok.eos_id, tok.token_to_id("<reserved_102>")) == (1, 2, 195)
    # Content never parses special strings; the text form does.
    assert 2 not in tok.encode("a</s>b")
    assert 2 in tok.encode_text_form("a</s>b")
    chatml = load_tokenizer(chatml_dir)
    assert chatml.chat_template and "<|im_end|>" in chatml.special_strings


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenizerLoadError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(TokenizerLoadError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"this is not a model")
    with pytest.raises(TokenizerLoadError, match="not a SentencePiece model"):
        load_tokenizer(tmp_path)
