"""The prescription notice: a prescription-only medicine and a dose in one sentence of an
answer, in Chinese or English; never for a medicine without a dose, a dose without such a
medicine, or an over-the-counter medicine with its dose."""

from __future__ import annotations

import pytest

from services.core.safety import detect_prescription

FIRES = {
    "可以口服阿莫西林胶囊0.5g，每日三次。": ["antibiotic.amount", "antibiotic.schedule_zh"],
    "建议头孢克肟 100 毫克，一天两次": ["antibiotic.amount", "antibiotic.schedule_zh"],
    "睡不着可以吃地西泮5mg。": ["sedative.amount"],
    "Take amoxicillin 500 mg three times a day.": ["antibiotic.amount", "antibiotic.schedule_en"],
    "Warfarin 2.5mg qd, check INR weekly.": ["cardiovascular.amount", "cardiovascular.schedule_en"],
    "Prednisone 40 mg once a day for five days.": ["steroid.amount", "steroid.schedule_en"],
    "皮下注射胰岛素 8 单位": ["endocrine.amount"],
}
QUIET = [
    "建议服用阿莫西林，具体剂量请遵医嘱。",  # a medicine, no dose
    "可以吃对乙酰氨基酚500mg，每日不超过4次。",  # over the counter
    "Ibuprofen 400 mg every 8 hours with food.",
    "维生素C 100mg，每日一次。",
    "多喝水，每天2000ml。医生可能会考虑头孢类抗生素。",  # dose and medicine, different sentences
    "头痛三天了，要注意休息。",
]


@pytest.mark.parametrize("answer", FIRES)
def test_a_prescription_medicine_with_a_dose_gets_the_notice(answer: str) -> None:
    notice = detect_prescription(answer)
    assert notice is not None
    assert notice.matched == FIRES[answer]
    assert "医生" in notice.message_zh and "doctor" in notice.message_en
    assert answer not in notice.model_dump_json()  # rule ids, never the text


@pytest.mark.parametrize("answer", QUIET)
def test_no_notice_without_both(answer: str) -> None:
    assert detect_prescription(answer) is None
