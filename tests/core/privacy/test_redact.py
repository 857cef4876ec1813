"""The PHI redactor on a synthetic corpus of Chinese and English records with known PHI spans
and medical look-alikes (blood pressure, doses, dates, lab values) that must survive."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from services.core.privacy import Redactor, redact
from services.core.privacy.redact import _ID_CHECK, _ID_WEIGHTS

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭"
GIVEN = ["小明", "伟", "芳", "秀英", "建国", "丽", "强", "婷婷", "志强", "桂兰"]
EN_FIRST = ["John", "Mary", "Robert", "Linda", "David", "Susan"]
EN_LAST = ["Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson"]
STREETS_CN = ["中山路", "人民大道", "解放街", "建设路", "和平里小区"]
CITIES_CN = [("广东省", "广州市"), ("浙江省", "杭州市"), ("四川省", "成都市"), ("北京市", "朝阳区")]
STREETS_EN = ["Main Street", "Oak Avenue", "Maple Road", "Sunset Blvd"]
# Medical text that looks numeric or name-like but is not PHI.
NEGATIVES = [
    "血压 120/80 mmHg，心率 110 次/分",
    "体温 38.5℃，已服用布洛芬 400mg，每日 3 次",
    "2023年5月3日开始咳嗽，白细胞 11.2×10^9/L",
    "空腹血糖 7.8 mmol/L，糖化血红蛋白 6.9%",
    "我是头痛三天了，患者自述胸闷",
    "BP 135/85, HR 72 bpm, took 20 mg atorvastatin daily since 2019-04-01",
    "I am feeling dizzy after 2 tablets of 500 mg paracetamol",
    "The patient reports pain level 7 out of 10 for 14 days",
    "CT 显示 3.2 cm 结节，随访 6 个月",
    "处方编号后三位 123，剂量 0.25 g",
]


def cn_id(rng: random.Random) -> str:
    body = f"{rng.randint(110000, 659000)}{rng.randint(1950, 2010)}{rng.randint(1, 12):02d}"
    body += f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


# PHI in shapes the rules do not claim to catch (no cue, no street number): they keep the
# recall figure honest.
HARD = [
    ("", "张伟的妈妈", "NAME"),
    ("问一下，", "李秀英", "NAME"),
    ("住在", "杭州市西湖区", "ADDRESS"),
    ("手机 ", "138 1234 5678", "PHONE"),
    ("", "Mary Davis says", "NAME"),
]


def phi_item(rng: random.Random) -> tuple[str, str, str]:
    """(text before, the PHI, label): the cue stays, the PHI goes."""
    if rng.random() < 0.1:
        return rng.choice(HARD)
    kind = rng.choice(
        [
            "cn_name",
            "en_name",
            "mobile",
            "landline",
            "us_phone",
            "email",
            "cn_id",
            "ssn",
            "mrn",
            "cn_addr",
            "en_addr",
        ]
    )
    if kind == "cn_name":
        return (
            rng.choice(["我叫", "患者：", "姓名："]),
            rng.choice(SURNAMES) + rng.choice(GIVEN),
            "NAME",
        )
    if kind == "en_name":
        return (
            rng.choice(["My name is ", "Dr. "]),
            f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}",
            "NAME",
        )
    if kind == "mobile":
        n = f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}"
        return "电话 ", rng.choice([n, f"{n[:3]}-{n[3:7]}-{n[7:]}", f"+86 {n}"]), "PHONE"
    if kind == "landline":
        return "座机 ", f"0{rng.randint(10, 999)}-{rng.randint(1000000, 99999999)}", "PHONE"
    if kind == "us_phone":
        return (
            "call me at ",
            f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            "PHONE",
        )
    if kind == "email":
        return (
            "邮箱 ",
            f"{rng.choice(['li.wei', 'JSmith', 'p42'])}@{rng.choice(['qq.com', 'example.org'])}",
            "EMAIL",
        )
    if kind == "cn_id":
        return "身份证 ", cn_id(rng), "ID"
    if kind == "ssn":
        return (
            "SSN ",
            f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            "ID",
        )
    if kind == "mrn":
        return "住院号：", f"ZY{rng.randint(100000, 999999)}", "ID"
    if kind == "cn_addr":
        prov, city = rng.choice(CITIES_CN)
        return (
            "住在",
            f"{prov}{city}{rng.choice(STREETS_CN)}{rng.randint(1, 300)}号{rng.randint(1, 30)}栋",
            "ADDRESS",
        )
    return "I live at ", f"{rng.randint(1, 9999)} {rng.choice(STREETS_EN)}", "ADDRESS"


def corpus(n: int, seed: int = 7) -> list[tuple[str, list[tuple[int, int, str]]]]:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        text, spans = "", []
        for _ in range(rng.randint(0, 3)):
            text += rng.choice(NEGATIVES) + "。"
            cue, phi, label = phi_item(rng)
            text += cue
            spans.append((len(text), len(text) + len(phi), label))
            text += phi + "，"
        text += rng.choice(NEGATIVES) + "。"
        records.append((text, spans))
    return records


def test_precision_and_recall_on_synthetic_records() -> None:
    redactor = Redactor()
    tp = fp = fn = 0
    missed: Counter[str] = Counter()
    for text, truth in corpus(600):
        found = redactor.spans(text)
        for s, e, label in truth:
            if any(f.start < e and s < f.end for f in found):
                tp += 1
            else:
                fn += 1
                missed[label] += 1
        for f in found:
            if not any(f.start < e and s < f.end for s, e, _ in truth):
                fp += 1
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(  # noqa: T201  (the figures the issue asks to see)
        f"\nPHI redaction on 600 synthetic records: precision {precision:.3f}, recall "
        f"{recall:.3f} ({tp} found, {fp} false, {fn} missed: {dict(missed)})"
    )
    # Cue-less names and bare districts are missed by design; everything the rules claim
    # to catch is caught, and nothing medical is taken.
    assert recall >= 0.9 and precision >= 0.98


@pytest.mark.parametrize("text", NEGATIVES)
def test_medical_numbers_survive(text: str) -> None:
    assert redact(text) == text


def test_cues_stay_and_phi_goes() -> None:
    assert redact("我叫王小明，电话13812345678") == "我叫[NAME]，电话[PHONE]"
    assert redact("My name is John Smith, email jsmith@example.org") == (
        "My name is [NAME], email [EMAIL]"
    )
    valid = cn_id(random.Random(1))
    assert redact(f"身份证 {valid}") == "身份证 [ID]"
    broken = valid[:17] + ("0" if valid[17] != "0" else "1")  # wrong check character
    assert redact(f"编号 {broken}") == f"编号 {broken}"


def test_deployment_rules_from_yaml(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {label: ward, regex: '\\d{2}床'}\n", encoding="utf-8")
    assert Redactor.with_extra(rules).redact("住在 12床") == "住在 [WARD]"
    rules.write_text("- {label: x}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="entry 0"):
        Redactor.with_extra(rules)
