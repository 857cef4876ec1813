"""The notices every answer carries, as the API shows them.

`services.core.safety` builds the emergency notice; this is its shape at the edge, so the
OpenAPI (and the frontend's generated types) name every field instead of an open object.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Emergency(BaseModel):
    """Present when the patient's words suggest an emergency (rules, not the model)."""

    categories: list[str] = Field(description="category ids, most severe first")
    severity: Literal["urgent", "critical"] = Field(
        description="urgent: see an emergency department soon; critical: call an ambulance now"
    )
    message_zh: str
    message_en: str
    matched: list[str] = Field(description='"category.pattern" rule ids; never the patient\'s text')


class Prescription(BaseModel):
    """Present when an answer names a prescription-only medicine with a dose (rules on the
    answer, not the model): prescribing is a doctor's decision."""

    classes: list[str] = Field(description='medicine classes named, e.g. "antibiotic"')
    message_zh: str
    message_en: str
    matched: list[str] = Field(description='"class.dose" rule ids; never the answer\'s text')


AI_GENERATED_HEADER = "x-medchat-ai-generated"  # on every response that carries a model's answer
