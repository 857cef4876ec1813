"""The prescription notice: a prescription-only medicine and a dose in one sentence of an
answer, in Chinese or English; never for a medicine without a dose, a dose without such a
medicine, or an over-the-counter medicine with its dose (paracetamol/对乙酰氨基酚, ibuprofen,
vitamins are left out of the rules on purpose: their doses are self-care advice)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.core.safety import (
    RulesError,
    default_prescription_rules,
    detect_prescription,
    load_prescription_rules,
)

FIRES = {
    "可以口服阿莫西林胶囊0.5g，每日三次。": ["antibiotic.amount", "antibiotic.schedule_zh"],
    "建议头孢克肟 100 毫克，一天两次": ["antibiotic.amount", "antibiotic.schedule_zh"],
    "睡不着可以吃地西泮5mg。": ["sedative.amount"],
    "睡前吃半片艾司唑仑": ["sedative.count_zh"],
    "头孢呋辛每12小时一次": ["antibiotic.schedule_zh"],
    "皮下注射胰岛素 8 单位": ["endocrine.amount"],
    "泼尼松片每次２片，每天１次": ["steroid.amount", "steroid.schedule_zh"],  # full-width digits
    "Take amoxicillin 500 mg three times a day.": ["antibiotic.amount", "antibiotic.schedule_en"],
    "Warfarin 2.5mg qd, check INR weekly.": ["cardiovascular.amount", "cardiovascular.schedule_en"],
    "Prednisone 40 mg once a day for five days.": ["steroid.amount", "steroid.schedule_en"],
    "METFORMIN 500 MG TWICE DAILY": ["endocrine.amount", "endocrine.schedule_en"],
    "Cefalexin 1 capsule every 6 hours.": ["antibiotic.amount", "antibiotic.schedule_en"],
}
QUIET = [
    "建议服用阿莫西林，具体剂量请遵医嘱。",  # a medicine, no dose
    "Amoxicillin is an antibiotic; your doctor decides the dose.",
    "可以吃对乙酰氨基酚500mg，每日不超过4次。",  # over the counter
    "Ibuprofen 400 mg every 8 hours with food.",
    "维生素C 100mg，每日一次。",  # a dose, no prescription medicine
    "多喝水，每天2000ml。医生可能会考虑头孢类抗生素。",  # medicine and dose, different sentences
    "Drink 2 l of water a day. Your doctor may consider amoxicillin.",
    "An insulinoma 5 mm across was found.",  # "insulin" only as a word
    "头痛三天了，要注意休息。",
    "",
]


@pytest.mark.parametrize("answer", FIRES)
def test_a_prescription_medicine_with_a_dose_gets_the_notice(answer: str) -> None:
    notice = detect_prescription(answer)
    assert notice is not None
    assert notice.matched == FIRES[answer]
    assert notice.classes == [FIRES[answer][0].split(".")[0]]
    assert "医生" in notice.message_zh and "doctor's decision" in notice.message_en
    assert notice.message("en") == notice.message_en and notice.message() == notice.message_zh
    assert answer not in notice.model_dump_json()  # rule ids and the file's texts, never the text


@pytest.mark.parametrize("answer", QUIET)
def test_no_notice_without_both(answer: str) -> None:
    assert detect_prescription(answer) is None


def test_every_class_named_is_listed_once() -> None:
    notice = detect_prescription("阿莫西林0.5g每日三次；地西泮5mg。阿奇霉素0.25g。")
    assert notice is not None
    assert notice.classes == ["antibiotic", "sedative"]
    assert notice.matched == ["antibiotic.amount", "antibiotic.schedule_zh", "sedative.amount"]


@pytest.mark.parametrize(
    "text",
    ["1" * 100_000 + "mg 阿莫西林", "一" * 100_000 + "片安定", "1." * 50_000, "cef" * 30_000],
)
def test_long_inputs_take_linear_time(text: str) -> None:
    started = time.perf_counter()
    detect_prescription(text)
    assert time.perf_counter() - started < 2  # ~0.2 s here; quadratic would take minutes


# --- rules files ---------------------------------------------------------------------------

_MINIMAL = """\
version: 1
notice: {zh: 请遵医嘱, en: Ask your doctor}
medicines:
  antibiotic: [阿莫西林, amoxicillin]
doses:
  amount: 'DOSE'
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prescription.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_custom_rules_file(tmp_path: Path) -> None:
    rules = load_prescription_rules(_write(tmp_path, _MINIMAL.replace("DOSE", r"\d+mg")))
    notice = detect_prescription("阿莫西林500mg", rules)
    assert notice is not None
    assert (notice.message_zh, notice.message_en) == ("请遵医嘱", "Ask your doctor")
    assert notice.matched == ["antibiotic.amount"]
    assert detect_prescription("地西泮5mg", rules) is None  # only this file's medicines


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nmedicines: [\n", "not valid YAML"),
        (_MINIMAL.replace("version: 1", "version: 2"), "version"),
        (_MINIMAL.replace("DOSE", "(mg"), "doses.amount: regex does not compile"),
        (_MINIMAL.replace("DOSE", r"\d+MG"), "'MG' can never match"),
        (_MINIMAL.replace("amoxicillin]", "Amoxicillin]"), "medicines.antibiotic[1]"),
        (_MINIMAL.replace("amount:", "Amount X:"), "id 'Amount X'"),
        (_MINIMAL.replace("DOSE", r"\d+mg").replace("[阿莫西林, amoxicillin]", "[]"), "empty"),
        (_MINIMAL.replace("DOSE", r"\d+mg") + "extra: 1\n", "extra"),
        (_MINIMAL.replace("notice: {zh: 请遵医嘱, en: Ask your doctor}\n", ""), "notice"),
    ],
)
def test_bad_rules_files(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RulesError) as info:
        load_prescription_rules(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_prescription_rules(tmp_path / "absent.yaml")


def test_default_rules_are_packaged_and_cached() -> None:
    rules = default_prescription_rules()
    assert rules is default_prescription_rules()
    assert rules.source.endswith("prescription_rules.yaml")
    names = sum(len(rx.pattern.split("|(?<!")) for _, rx in rules.medicines)
    assert names >= 40  # a clinical list, not a sample
