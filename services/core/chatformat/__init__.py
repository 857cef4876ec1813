"""The conversation format: the only code that turns a dialogue into tokens.

The trainer imports it to build input ids and loss masks, the gateway to build prompts, so
training and serving cannot drift apart.
"""

from .conversation import Conversation, Role, Turn
from .neutralize import ContentEncoder, ControlTokenLeak
from .profiles import BAICHUAN2, DISC_MEDLLM, GENERIC, PROFILES, ModelProfile, get_profile
from .readers import ConversationError, Issue, Row, parse_conversation, read_row, to_conversation
from .render import (
    ChatFormat,
    FormatError,
    Prompt,
    PromptTooLong,
    TrainingSample,
    chat_format,
    prompt_budget,
    render_prompt,
    render_training,
)
from .tokenizer import Tokenizer, TokenizerLoadError, load_tokenizer

__all__ = [
    "BAICHUAN2",
    "DISC_MEDLLM",
    "GENERIC",
    "PROFILES",
    "ChatFormat",
    "ContentEncoder",
    "ControlTokenLeak",
    "Conversation",
    "ConversationError",
    "FormatError",
    "Issue",
    "ModelProfile",
    "Prompt",
    "PromptTooLong",
    "Role",
    "Row",
    "Tokenizer",
    "TokenizerLoadError",
    "TrainingSample",
    "Turn",
    "chat_format",
    "get_profile",
    "load_tokenizer",
    "parse_conversation",
    "prompt_budget",
    "read_row",
    "render_prompt",
    "render_training",
    "to_conversation",
]
