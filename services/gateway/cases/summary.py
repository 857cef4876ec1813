"""The model writes a short summary of a conversation for the clinician who takes it over,
through the same generation flow as every answer (so the engine's guards and budget apply).
The summary is labelled as AI-written wherever it is shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.core.chatformat import PromptTooLong, Turn
from services.gateway.chat.generation import GenerationFlow
from services.gateway.chat.runtime import ChatRuntime
from services.gateway.deps import MetricsDep, Runtime
from services.gateway.errors import ApiError
from services.gateway.observability import Metrics
from services.store.tables.sessions import Message

from .schemas import CaseSummary

ASK = (
    "请为接手这段对话的医生写一份简短摘要（不超过五句）：主诉、主要症状及持续时间、"
    "已知病史与用药、已给出的建议、需要医生特别注意的风险。只写摘要。"
)
MAX_NEW_TOKENS = 256


@dataclass(frozen=True, slots=True)
class CaseSummarizer:
    runtime: ChatRuntime
    metrics: Metrics

    async def summarize(self, messages: Sequence[Message]) -> CaseSummary:
        turns = [
            Turn(role="user" if m.role == "user" else "assistant", content=m.content)
            for m in messages
            if m.content and m.status != "failed"
        ]
        turns.append(Turn(role="user", content=ASK))
        flow = GenerationFlow(self.runtime, self.metrics, "chat")
        await flow.guard()
        try:
            prompt = await flow.render(turns, MAX_NEW_TOKENS)
        except PromptTooLong as exc:
            raise ApiError(409, "conversation_too_long", str(exc)) from exc
        answer = await flow.start(prompt, MAX_NEW_TOKENS, emergency_text="")
        text = "".join([piece async for piece in answer.texts()]).strip()
        answer.finished()
        if answer.error is not None:
            raise ApiError(502, answer.error_code or "engine_generation_failed", answer.error)
        return CaseSummary(text=text, model=answer.model)


async def case_summarizer(runtime: Runtime, metrics: MetricsDep) -> CaseSummarizer:
    return CaseSummarizer(runtime, metrics)


Summarizer = Annotated[CaseSummarizer, Depends(case_summarizer)]
