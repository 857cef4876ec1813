"""Emergency notice rules and the disclaimer.

The tables are messages written the way patients type them.  History mentions: condition
names (中风, 心梗, stroke, heart attack ...) in a clause that is clearly about the past or
about prevention ("十年前", "病史", "years ago") do not trigger, unless the same clause also says
it is happening now ("突然", "现在", "again"); described symptoms and suicidal intent always
trigger.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.safety import (
    DISCLAIMER_EN,
    DISCLAIMER_ZH,
    EmergencyNotice,
    RulesError,
    RuleSet,
    Severity,
    default_rules,
    detect_emergency,
    detect_emergency_in_messages,
    disclaimer,
    load_rules,
    normalize,
)

# (message, a category that must be among the notice's categories)
SHOULD_TRIGGER: list[tuple[str, str]] = [
    # chest pain / heart attack
    ("胸口像压了块石头一样疼，还出冷汗", "chest_pain"),
    ("胸口疼了半个小时了，一直不缓解", "chest_pain"),
    ("心口痛，疼得直冒汗", "chest_pain"),
    ("医生我胸痛，左边胳膊也麻", "chest_pain"),
    ("胸口有压榨感，喘不上气", "chest_pain"),
    ("我爸心绞痛又犯了，含了硝酸甘油也不管用", "chest_pain"),
    ("疼痛放射到左臂和下巴", "chest_pain"),
    ("是不是心梗啊？胸口闷得慌", "chest_pain"),
    ("I think I'm having a heart attack, my chest hurts and my left arm is numb", "chest_pain"),
    ("Crushing chest pain for 20 minutes, sweating", "chest_pain"),
    ("CHEST PAIN radiating to my jaw", "chest_pain"),
    # stroke
    ("我爸刚才突然说话不清楚，右边手脚没力气", "stroke"),
    ("我妈嘴巴有点歪，口水往下流", "stroke"),
    ("奶奶早上起来口角歪斜，左边身体麻木", "stroke"),
    ("老公突然右手没力气，筷子都拿不住了", "stroke"),
    ("以前得过脑梗，今天早上又突然说话含糊", "stroke"),
    ("My dad's face is drooping and his speech is slurred", "stroke"),
    ("sudden weakness on one side of her body", "stroke"),
    ("he suddenly can't speak properly", "stroke"),
    ("右边胳膊和腿突然动不了了", "stroke"),
    # breathing
    ("孩子喘不上气，嘴唇发紫", "breathing"),
    ("憋得喘不过气来，躺不下", "breathing"),
    ("宝宝被果冻噎住了", "breathing"),
    ("I can't breathe properly and it's getting worse", "breathing"),
    ("my son is having trouble breathing after eating peanuts", "breathing"),
    ("He is not breathing!", "breathing"),
    # severe bleeding
    ("切菜切到手，血流不止", "severe_bleeding"),
    ("鼻血止不住，已经流了半个小时了", "severe_bleeding"),
    ("我爸今天吐了好多血", "severe_bleeding"),
    ("拉了很多血，头晕", "severe_bleeding"),
    ("coughing up blood since this morning", "severe_bleeding"),
    ("the cut is bleeding heavily and won't stop", "severe_bleeding"),
    ("the bleeding from my gums won't stop", "severe_bleeding"),
    ("老人摔倒了，头上出了很多血", "severe_bleeding"),
    # suicidal intent / self-harm
    ("我真的不想活了", "suicide"),
    ("活着没意思，想死", "suicide"),
    ("我有自杀的想法", "suicide"),
    ("昨晚割腕了，现在手腕还在流血", "suicide"),
    ("我没有自杀的想法，就是睡不着", "suicide"),  # negation never cancels this category
    ("I want to kill myself", "suicide"),
    ("i just want to end my life", "suicide"),
    ("I've been self-harming again", "suicide"),
    ("I feel like I can't go on anymore", "suicide"),
    ("活着好累", "suicide"),
    # poisoning / overdose
    ("吃了半瓶安眠药", "poisoning"),
    ("孩子误服了奶奶的降压药", "poisoning"),
    ("我爸喝了农药", "poisoning"),
    ("一口气吃了20片布洛芬", "poisoning"),
    ("家里煤气中毒了，两个人头晕恶心", "poisoning"),
    ("my toddler swallowed a button battery", "poisoning"),
    ("I took a whole bottle of Tylenol", "poisoning"),
    ("possible overdose on sleeping pills", "poisoning"),
    ("小孩把纽扣电池吞下去了", "poisoning"),
    ("被蛇咬了一口，腿肿了", "poisoning"),
    ("my kid drank some bleach", "poisoning"),
    # anaphylaxis
    ("吃了虾以后嘴唇肿了，喘不上气", "anaphylaxis"),
    ("被蜜蜂蛰了，喉咙发紧", "anaphylaxis"),
    ("打完针全身起疹子，血压下降", "anaphylaxis"),
    ("my throat is swelling up after a bee sting", "anaphylaxis"),
    # unconsciousness / seizure
    ("我爷爷晕倒了，叫他没反应", "unconscious_seizure"),
    ("孩子全身抽搐，口吐白沫", "unconscious_seizure"),
    ("宝宝高烧抽搐了，翻白眼", "unconscious_seizure"),
    ("喝醉了叫不醒", "unconscious_seizure"),
    ("my husband collapsed and is unresponsive", "unconscious_seizure"),
    ("she is having a seizure and won't stop shaking", "unconscious_seizure"),
    ("我妈现在没有意识了", "unconscious_seizure"),
    # fever danger
    ("2个月宝宝发烧38.5度", "fever_danger"),
    ("新生儿发热怎么办", "fever_danger"),
    ("发烧两天，今天脖子僵硬，低不下头", "fever_danger"),
    ("my 6 week old has a fever of 38.2", "fever_danger"),
    ("high fever and a stiff neck, light hurts my eyes", "fever_danger"),
    # pregnancy
    ("怀孕8周，下面出血很多，肚子疼", "pregnancy_emergency"),
    ("孕32周，肚子疼得厉害", "pregnancy_emergency"),
    ("医生说可能是宫外孕，现在肚子很疼", "pregnancy_emergency"),
    ("I'm 10 weeks pregnant and bleeding with bad cramps", "pregnancy_emergency"),
    ("怀孕7周出血了，肚子也疼", "pregnancy_emergency"),
    ("孕38周破水了", "pregnancy_emergency"),
    # burns
    ("孩子被开水烫伤了一大片，起了很多水泡", "severe_burn"),
    ("热油溅到脸上，烫得很严重", "severe_burn"),
    ("工地上有人触电了", "severe_burn"),
    ("third-degree burns on his arm", "severe_burn"),
    # thunderclap headache
    ("突然剧烈头痛，是这辈子最疼的一次", "thunderclap_headache"),
    ("一生中最剧烈的头痛，还吐了", "thunderclap_headache"),
    ("worst headache of my life, came on in seconds", "thunderclap_headache"),
    ("突然头疼得厉害，还吐了", "thunderclap_headache"),
    # full-width, mixed language, spacing, curly quotes
    ("胸口疼！！还出冷汗", "chest_pain"),
    ("ＣＨＥＳＴ　ＰＡＩＮ，ｈｅｌｐ", "chest_pain"),
    ("胸 口 疼", "chest_pain"),
    ("我妈 sudden weakness on one side，说话不清楚", "stroke"),
    ("I can’t breathe，喘不上气", "breathing"),
    ("没有发烧，但是胸口疼", "chest_pain"),  # the negation belongs to the first clause
    ("no fever but my chest hurts", "chest_pain"),
]

SHOULD_NOT_TRIGGER: list[str] = [
    "感冒咳嗽三天了，吃什么药好",
    "皮肤痒，起了一些小红点",
    "月经推迟了一周，会不会怀孕",
    "no chest pain, just a mild cough",
    "没有胸痛，只是有点咳嗽",
    "否认胸痛，无呼吸困难",
    "我奶奶十年前中过风，现在想问问降压药",
    "我奶奶十年前中风了，现在想问问降压药",
    "我爸有脑梗病史，平时吃阿司匹林",
    "my grandmother had a stroke ten years ago, what blood pressure pills are safe",
    "how can I prevent a heart attack",
    "怎么预防心梗",
    "布洛芬一次吃几片？感冒发烧38度",
    "What's the dose of paracetamol for a cold?",
    "嗓子疼，喉咙肿痛，有点咳嗽",
    "喉咙红肿，吞咽的时候疼",
    "眼皮一直跳，抽搐了好几天",
    "腿抽筋了怎么办",
    "月经前胸部胀痛正常吗",
    "胸椎疼，久坐以后更明显",
    "大便带血，是不是痔疮",
    "刷牙牙龈出血",
    "孩子三岁说话不清楚正常吗",
    "左腿发麻，腰也疼",
    "I can't breathe through my nose, it's so stuffy",
    "I hurt my ankle playing football",
    "吃了很多药都没用，还是咳嗽",
    "喝了一瓶啤酒，第二天头疼",
    "昨晚吃坏了，可能是食物中毒，拉肚子",
    "怀孕8周，没有出血也没有腹痛，想问问产检",
    "I'm 12 weeks pregnant, no bleeding or pain, is coffee ok?",
    "这个月工作累死了，失眠",
    "热得要死，中暑了吗",
    "我有癫痫，平时吃丙戊酸钠，能喝酒吗",
    "my seizure medication makes me sleepy",
    "手指被开水烫了一下，起了个小水泡",
    "头疼两天了，吃了止痛药好一点",
    "11个月宝宝发烧38度，精神还好",
    "宝宝5个月了，发烧38度",
    "胃不舒服，有点恶心",
    "bad heartburn after dinner",
    "没有呼吸困难，就是鼻塞",
    "I have a rash from poison ivy",
    "I don't have chest pain or shortness of breath",
    "头痛欲裂，昨晚喝多了",
    "睡觉打呼噜憋醒",
    "I can't go on a diet, I love food too much",
    "安眠药吃了能睡着吗",
    "孕期便秘，肚子有点疼",
    "孕早期有点见红，肚子不疼",
    "喝了一瓶白酒，头晕",
    "笑死我了",
    "我想死你了，好久没见",
    "这个价格简直跳楼价",
    "我不想死，医生我是不是得了癌症",  # fear of dying is not suicidal intent
    "被狗咬了要打疫苗吗",
    "差点晕倒，蹲下就好了",
    "鼻塞，呼吸不畅",
    "大便发黑，吃了铁剂",
    "做饭被油烫了一下手背",
    "my baby is 4 months old and has a fever",
    "I took 2 tylenol for my headache",
]


@pytest.mark.parametrize(("message", "category"), SHOULD_TRIGGER)
def test_urgent_message_gets_a_notice(message: str, category: str) -> None:
    notice = detect_emergency(message)
    assert notice is not None, message
    assert category in notice.categories, (message, notice.categories)


@pytest.mark.parametrize("message", SHOULD_NOT_TRIGGER)
def test_ordinary_message_gets_no_notice(message: str) -> None:
    notice = detect_emergency(message)
    assert notice is None, (message, notice and notice.matched)


def test_tables_are_big_enough_and_cover_every_category() -> None:
    assert len(SHOULD_TRIGGER) >= 40
    assert len(SHOULD_NOT_TRIGGER) >= 30
    assert {c for _, c in SHOULD_TRIGGER} == set(default_rules().category_ids)


# --- negation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "没有胸痛",
        "无胸痛",
        "否认胸痛、呼吸困难",
        "不是胸痛，是胃疼",
        "没有任何胸痛",
        "No chest pain.",
        "denies chest pain",
        "without any shortness of breath",
        "I don't have chest pain",
    ],
)
def test_negated_symptom_does_not_trigger(message: str) -> None:
    assert detect_emergency(message) is None


@pytest.mark.parametrize(
    "message",
    [
        "我不知道为什么胸口疼",  # 不知道 is not a negation of the symptom
        "无明显诱因突然胸痛",  # 无 negates 诱因, not 胸痛
        "不会是心梗吧",  # a worried question
        "I don't know why my chest hurts",
        "I'm not sure but my face is drooping",
        "没有发烧。胸口疼",
    ],
)
def test_negation_does_not_reach_too_far(message: str) -> None:
    assert detect_emergency(message) is not None


@pytest.mark.parametrize(
    "message",
    ["我不想活了", "我不想死了算了", "I'm not suicidal, I just want to die", "没有想自杀"],
)
def test_negation_never_cancels_suicidal_intent(message: str) -> None:
    notice = detect_emergency(message)
    assert notice is not None
    assert "suicide" in notice.categories


def test_suicide_category_has_no_negation_cues() -> None:
    suicide = next(c for c in default_rules().categories if c.id == "suicide")
    assert suicide.negation_cues == ()


# --- history -------------------------------------------------------------------------------


def test_history_mention_is_overruled_by_an_acute_cue_in_the_same_clause() -> None:
    assert detect_emergency("我爸去年中风过") is None
    assert detect_emergency("我爸去年中风过，今天又中风了") is not None
    assert detect_emergency("had a stroke years ago and now again") is not None


def test_history_does_not_hide_described_symptoms() -> None:
    notice = detect_emergency("我爸十年前中风，现在右边手脚没力气")
    assert notice is not None
    assert notice.matched == ["stroke.one_side_zh"]


# --- the notice ----------------------------------------------------------------------------


def test_notice_shape_and_order() -> None:
    notice = detect_emergency("孩子被开水烫伤了一大片，又吃了半瓶安眠药，我不想活了")
    assert notice is not None
    assert notice.categories == ["suicide", "poisoning", "severe_burn"]  # most severe first
    assert notice.severity is Severity.CRITICAL
    assert notice.matched[0].startswith("suicide.")
    assert all(re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", m) for m in notice.matched)
    assert "12356" in notice.message_zh and "010-82951332" in notice.message_zh
    assert "120/110" in notice.message_zh
    assert "911/112/120" in notice.message_en
    assert notice.message("en") == notice.message_en
    assert notice.message("zh-CN") == notice.message_zh


def test_urgent_only_notice() -> None:
    notice = detect_emergency("2个月宝宝发烧")
    assert notice is not None
    assert notice.severity is Severity.URGENT


def test_generic_text_shown_once() -> None:
    notice = detect_emergency("喘不上气，血流不止")
    assert notice is not None
    assert notice.categories == ["breathing", "severe_bleeding"]
    assert notice.message_zh.count("请立即拨打120急救电话") == 1


def test_notice_is_frozen() -> None:
    notice = detect_emergency("胸口疼")
    assert notice is not None
    with pytest.raises(ValueError):
        notice.severity = Severity.URGENT


def test_notice_never_contains_the_patients_text() -> None:
    secret = "张三丰 13800138000 XYZZY-4242"
    notice = detect_emergency(f"我是{secret}，胸口疼得厉害，不想活了 {secret}")
    assert notice is not None
    dumped = notice.model_dump_json()
    for part in secret.split():
        assert part not in dumped
        assert part.lower() not in dumped.lower()


def _assert_made_of_rule_texts(notice: EmergencyNotice) -> None:
    texts = default_rules().notice_texts()
    for message in (notice.message_zh, notice.message_en):
        assert all(line in texts for line in message.split("\n"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_detect_never_raises_on_arbitrary_text(text: str) -> None:
    notice = detect_emergency(text)
    if notice is not None:
        _assert_made_of_rule_texts(notice)


_FRAGMENTS = [t for t, _ in SHOULD_TRIGGER[::5]] + SHOULD_NOT_TRIGGER[::5] + ["没有", "不", "no "]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=20)), max_size=8))
def test_detect_never_raises_on_mixed_fragments(parts: list[str]) -> None:
    notice = detect_emergency("".join(parts))
    if notice is not None:
        _assert_made_of_rule_texts(notice)
        assert notice.categories and notice.matched


def _without_prefilter(rules: RuleSet) -> RuleSet:
    categories = tuple(
        dataclasses.replace(
            c, patterns=tuple(dataclasses.replace(p, prefilter=None) for p in c.patterns)
        )
        for c in rules.categories
    )
    return dataclasses.replace(rules, categories=categories)


_UNFILTERED = _without_prefilter(default_rules())


def test_every_packaged_pattern_has_a_literal_prefilter() -> None:
    # Keeps a long message fast: a pattern without one runs its regex on every message.
    missing = [p.rule_id for c in default_rules().categories for p in c.patterns if not p.prefilter]
    assert missing == []


@pytest.mark.parametrize("message", [t for t, _ in SHOULD_TRIGGER] + SHOULD_NOT_TRIGGER)
def test_prefilter_never_changes_the_result_on_the_tables(message: str) -> None:
    assert detect_emergency(message) == detect_emergency(message, _UNFILTERED)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=10)), max_size=6))
def test_prefilter_never_changes_the_result(parts: list[str]) -> None:
    text = "".join(parts)
    assert detect_emergency(text) == detect_emergency(text, _UNFILTERED)


@pytest.mark.parametrize(
    "text",
    [
        " " * 10_000,
        " \n " * 3_000,
        "fever " * 1_600 + "stiff neck",
        "pregnant " * 1_100 + "heavy bleeding",
        "怀孕出血" * 2_500,
        "没有胸痛，" * 2_000,
        "胸" * 10_000,
    ],
)
def test_pathological_long_inputs(text: str) -> None:
    # Repetitive inputs that make gap patterns backtrack; they must finish and agree.
    assert detect_emergency(text) == detect_emergency(text, _UNFILTERED)


def test_empty_and_whitespace() -> None:
    assert detect_emergency("") is None
    assert detect_emergency(" \n\t　") is None


def test_long_message() -> None:
    filler = "最近有点咳嗽，嗓子不舒服，想问问吃什么药。" * 500  # ~10,000 characters
    assert len(filler) >= 10_000
    assert detect_emergency(filler) is None
    notice = detect_emergency(filler + "刚才突然胸口疼")
    assert notice is not None and notice.categories == ["chest_pain"]


def test_messages_are_separate_clauses() -> None:
    # "没有" ends the first message; it must not cancel the symptom in the next one.
    assert detect_emergency_in_messages(["发烧吗？没有", "胸口疼"]) is not None
    assert detect_emergency_in_messages(["感冒了", "咳嗽"]) is None


def test_normalize() -> None:
    assert normalize("ＣＨＥＳＴ　ＰＡＩＮ！") == "chest pain!"
    assert normalize("胸 口\u200b 疼") == "胸口疼"
    assert normalize("I can’t\n\n  breathe") == "i can't\nbreathe"


# --- rules files ---------------------------------------------------------------------------

_MINIMAL = """\
version: 1
negation:
  cues: ['没有', '\\bno\\b']
categories:
  - id: chest_pain
    severity: critical
    patterns:
      - id: pain
        lang: zh
        regex: 'CHEST_REGEX'
    notice: {zh: 请拨打120, en: Call 911}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_custom_rules_file(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, _MINIMAL.replace("CHEST_REGEX", "胸{0,1}痛")))
    assert rules.category_ids == ["chest_pain"]
    notice = detect_emergency("胸痛", rules)
    assert notice is not None
    assert notice.message_zh == "请拨打120"
    assert notice.matched == ["chest_pain.pain"]
    assert detect_emergency("没有胸痛", rules) is None
    assert detect_emergency("想死", rules) is None  # only this file's rules apply


def test_bad_regex_names_file_rule_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _MINIMAL.replace("CHEST_REGEX", "胸(痛"))
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    assert "'chest_pain'" in message and "'pain'" in message and "'regex" in message
    assert "does not compile" in message


def test_bad_field_names_file_rule_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _MINIMAL.replace("CHEST_REGEX", "胸痛").replace("critical", "severe"))
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert str(path) in message
    assert "categories[0] (id 'chest_pain').severity" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ncategories: [\n", "not valid YAML"),
        ("version: 2\ncategories: []\n", "version"),
        (_MINIMAL.replace("CHEST_REGEX", "{nope}痛"), "unknown macro {nope}"),
        (_MINIMAL.replace("CHEST_REGEX", "胸痛").replace("lang: zh", "lang: fr"), "lang"),
        (_MINIMAL.replace("CHEST_REGEX", "Chest pain"), "'C' can never match"),
        (_MINIMAL.replace("CHEST_REGEX", "胸痛").replace("id: pain", "id: Pain X"), "id"),
        (
            _MINIMAL.replace("CHEST_REGEX", "胸痛").replace(
                "    notice:", "    notes: x\n    notice:"
            ),
            "notes",
        ),
        (_MINIMAL.replace("CHEST_REGEX", "胸痛").replace("'没有'", "'(没有'"), "negation.cues[0]"),
    ],
)
def test_bad_rules_files(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.yaml")


def test_default_rules_are_packaged_and_cached() -> None:
    assert default_rules() is default_rules()
    assert default_rules().source.endswith("emergency_rules.yaml")


# --- disclaimer ----------------------------------------------------------------------------


def test_disclaimer() -> None:
    assert disclaimer() == DISCLAIMER_ZH
    assert disclaimer("zh") == DISCLAIMER_ZH
    assert disclaimer("en") == DISCLAIMER_EN
    assert disclaimer("en-US") == DISCLAIMER_EN
    assert disclaimer("fr") == DISCLAIMER_ZH
    assert "不能替代医生的诊断" in DISCLAIMER_ZH
    assert "not a diagnosis" in DISCLAIMER_EN
