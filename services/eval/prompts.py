"""Every prompt the evaluation sends, and only here: the judge's (DISC-MedLLM's published
rubric), the patient simulator's, and the multiple-choice question's. The judge and the
patient never share text: the judge sees the finished dialogue, the patient only its case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CRITERIA = ("Proactivity", "Accuracy", "Helpfulness", "Linguistic Quality")

# ---------------------------------------------------------------------------------------------
# The judge. Both rubrics are DISC-MedLLM's, word for word as they stand in the `prompt` field
# of its published GPT-4 score files (eval/gpt4_scores), typos included ("anc", "diagonosis"):
# scores are only comparable with the published ones when the judge reads the same text.
# CMB-clin was scored with the first; CMD and CMID with the second, whose Proactivity item
# gives full marks when the patient's question leaves nothing to ask about.

_JUDGE_INTRO = (
    "You are a professional, impartial, and strict scorer. Below is a conversation between a"
    " patient and an AI doctor. Based on the 4 criteria below, rate the doctor's performance"
    " on a scale of 1-5 for each of the 4 items based on the conversation. Only provide the"
    " scores without explanations.\n"
)
_PROACTIVITY_CLIN = (
    "Proactivity: The doctor can proactively anc clearly request the patient to provide more"
    " information about the symptoms, physical examination results and medical history when"
    " the information is insufficient, actively guiding the patient through the consultation"
    " process.\n"
)
_PROACTIVITY_OPEN = (
    "Proactivity: The doctor can proactively and clearly request the patient to provide more"
    " information about the symptoms, physical examination results, and medical history when"
    " the information is insufficient, actively guiding the patient through the consultation"
    " process. However, if the patient's inquiry during the conversation is clear, direct, and"
    " unrelated to personal health conditions, making proactivity less relevant to the"
    " evaluation, a full score of five should be given.\n"
)
_JUDGE_REST = (
    "Accuracy: The diagonosis or advice provided by the doctor is accurate and has no factual"
    " errors. Conclusions are not made arbitrarily.\n"
    "Helpfulness: The doctor's responses provide the patient with clear, instructive and"
    " practical assistance, specifically addressing the patient's concerns.\n"
    "Linguistic Quality: The conversation is logical. The doctor correctly understands the"
    " patient's semantics, and the expression is smooth and natural.\n"
    "\n"
    "Please ensure that you do not let the length of the text influence your judgment, do not"
    " have a preference for any AI assistant names that might appear in the dialogue, do not"
    " let irrelevant linguistic habits in the conversation influence your judgment, and strive"
    " to remain objective. Your scoring should be strict enough and do not give a perfect score"
    " easily.\n"
    "Please output the scoring results in the following format:\n"
    "```\nProactivity: x\nAccuracy: x\nHelpfulness: x\nLinguistic Quality: x\n```\n\n"
)
JUDGE_RUBRIC_CMB_CLIN = _JUDGE_INTRO + _PROACTIVITY_CLIN + _JUDGE_REST
JUDGE_RUBRIC_OPEN = _JUDGE_INTRO + _PROACTIVITY_OPEN + _JUDGE_REST


def judge_rubric(source: str) -> str:
    """The rubric DISC-MedLLM used for a dataset (by its `source` name, e.g. "CMB-clin")."""
    return JUDGE_RUBRIC_CMB_CLIN if source.lower() == "cmb-clin" else JUDGE_RUBRIC_OPEN


def judge_prompt(source: str, conversation: Sequence[dict[str, Any]]) -> str:
    """The judge's whole message: the rubric, then the dialogue as DISC-MedLLM wrote it
    (`patient: …` / `doctor: …` lines between the start and end markers)."""
    lines = "\n".join(f"{m['role']}: {m['content']}" for m in conversation)
    return f"{judge_rubric(source)}[start of conversation]\n{lines}\n[end of conversation]"


# ---------------------------------------------------------------------------------------------
# The patient simulator. DISC-MedLLM's release describes it (GPT-3.5 plays the patient from
# the case and chats with the model) but does not publish its prompt; this one is ours,
# written from that description. It keeps the patient to the case's facts, one concern at a
# time, in colloquial Chinese, and never lets it play the doctor.

PATIENT_SYSTEM = (
    "你正在扮演一名在网上向医生咨询的患者（也可能是患者的家属），和你对话的是一位AI医生。\n"
    "{background}\n"
    "对话要求：\n"
    "1. 始终以患者的身份说话，用自然、口语化的中文，每次只说一到三句话；\n"
    "2. 医生问到的情况，只根据上面的资料如实回答；资料里没有的，就说不清楚或没做过，不要编造；\n"
    "3. 医生没有问到的检查结果，不要一次全部说出来；\n"
    "4. 回答完医生的问题后，可以就病因、检查、治疗或注意事项等你关心的事继续追问一个问题；\n"
    "5. 不要扮演医生，不要自己下诊断，也不要提到你是AI或在扮演角色。\n"
    "只输出患者要说的话本身，不要加“患者：”之类的前缀。"
)
PATIENT_CASE = "下面是你的病情资料（医生看不到这些资料，只能通过问你得知）：\n{case}"
PATIENT_QUESTION = "你最初向医生提出的问题是：{question}"
PATIENT_DEPARTMENT = "（你挂的是{department}。）"
PATIENT_TURN = "以下是到目前为止你和医生的对话：\n{transcript}\n\n请以患者的身份说出你的下一句话。"
PATIENT_LABEL = "患者"
DOCTOR_LABEL = "医生"


def patient_background(*, case: str | None, question: str, department: str | None = None) -> str:
    """What the simulated patient knows: the full case record where the dataset has one
    (CMB-clin), else the patient's own first question (CMD, CMID)."""
    if case:
        return PATIENT_CASE.format(case=case.strip())
    text = PATIENT_QUESTION.format(question=question.strip())
    return text + PATIENT_DEPARTMENT.format(department=department) if department else text


def patient_messages(
    background: str, conversation: Sequence[dict[str, Any]]
) -> list[dict[str, str]]:
    """The simulator's request: its persona and case, then the dialogue so far as a transcript
    in one user message (every OpenAI-compatible server accepts that shape)."""
    labels = {"patient": PATIENT_LABEL, "doctor": DOCTOR_LABEL}
    transcript = "\n".join(f"{labels[m['role']]}：{m['content']}" for m in conversation)
    return [
        {"role": "system", "content": PATIENT_SYSTEM.format(background=background)},
        {"role": "user", "content": PATIENT_TURN.format(transcript=transcript)},
    ]


# ---------------------------------------------------------------------------------------------
# Multiple-choice questions (MLEC-QA / NEEP-306 style): the instruction, then each question
# with lettered options and "答案：". Few-shot examples go before it as earlier chat rounds,
# each answered with its letter(s) alone.

MCQ_INSTRUCTION = "以下是中国医学考试的选择题，请选出正确答案，只需回答选项字母。"
MCQ_QUESTION = "{question}\n{options}\n答案："


def mcq_question(question: str, options: Sequence[tuple[str, str]]) -> str:
    listed = "\n".join(f"{letter}. {text}" for letter, text in options)
    return MCQ_QUESTION.format(question=question.strip(), options=listed)
