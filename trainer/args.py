"""Arguments: this trainer's own options (a dataclass with help text) plus Hugging Face
`TrainingArguments`, read from a JSON file as DISC-MedLLM's `sft.json`, with command-line
overrides on top (`--train_args_file sft.json --output_dir X`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class ArgumentsError(ValueError):
    """The arguments file or the command line cannot be used."""


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(
        metadata={"help": "Base model directory (config.json, weights, tokenizer files)."}
    )
    train_file: str = field(
        metadata={"help": "Training data, JSONL: DISC-MedLLM, OpenAI or Firefly rows."}
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Optional evaluation data in the same formats."}
    )
    profile: str = field(
        default="disc-medllm",
        metadata={"help": "Conversation format profile (services.core.chatformat.profiles)."},
    )
    max_seq_length: int = field(
        # DISC-MedLLM's sft.json: 1200 tokens per conversation, later rounds cut.
        default=1200,
        metadata={"help": "Tokens kept per conversation (whole rounds, then cut)."},
    )
    packing: bool = field(
        default=False,
        metadata={
            "help": "Pack conversations into rows of pack_length tokens, attention isolated"
            " per conversation. per_device_train_batch_size then counts rows."
        },
    )
    pack_length: int | None = field(
        default=None, metadata={"help": "Row length when packing (default: max_seq_length)."}
    )
    attention: Literal["auto", "flash", "flex", "mask"] = field(
        default="auto",
        metadata={
            "help": "How packed rows isolate conversations: flash (flash-attn varlen), flex"
            " (FlexAttention BlockMask), mask (4D block-diagonal mask through sdpa). auto:"
            " flash where installed on a GPU, flex on other GPUs, mask on a CPU."
        },
    )
    model_dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="auto",
        metadata={
            "help": "Weights dtype at load. auto: bfloat16 under DeepSpeed (it keeps fp32"
            " master weights itself) and for LoRA (frozen base); float32 otherwise, so the"
            " optimizer updates fp32 weights while --bf16 autocasts the math."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run the model's own code. Off unless asked; never for Baichuan, which"
            " this trainer implements (trainer/baichuan)."
        },
    )
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (peft)."})
    qlora: bool = field(
        default=False,
        metadata={"help": "QLoRA: 4-bit NF4 base (bitsandbytes, CUDA) with a LoRA adapter."},
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale alpha/r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Comma-separated module names, or all-linear."},
    )
    save_merged: bool = field(
        default=False,
        metadata={
            "help": "With LoRA: save the base model with the adapter merged in (an engine"
            " loads it like any model) instead of the adapter alone."
        },
    )
    progress_file: str | None = field(
        default=None,
        metadata={
            "help": "Write progress as JSON lines to this file (rank 0). Without it, the"
            " inherited file descriptor in MEDCHAT_PROGRESS_FD is used when set."
        },
    )

    @property
    def row_length(self) -> int:
        """The longest sequence the model sees: a packed row, or one conversation."""
        return self.pack_length if self.packing and self.pack_length else self.max_seq_length


def _parser() -> Any:
    from transformers import HfArgumentParser, TrainingArguments

    return HfArgumentParser((ScriptArguments, TrainingArguments))  # type: ignore[arg-type]


def parse_args(argv: Sequence[str] | None) -> tuple[ScriptArguments, dict[str, Any]]:
    """Our arguments, and TrainingArguments' as keyword arguments: TrainingArguments is built
    only after the pre-flight checks, because building it starts DeepSpeed and the process
    group."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--train_args_file", default=None)
    known, rest = pre.parse_known_args(argv)
    parser = _parser()
    dests = {a.dest for a in parser._actions}
    if known.train_args_file:
        defaults = read_args_file(Path(known.train_args_file))
        unknown = sorted(set(defaults) - dests)
        if unknown:
            raise ArgumentsError(f"{known.train_args_file}: unknown arguments {', '.join(unknown)}")
        parser.set_defaults(**defaults)
        for action in parser._actions:  # given by the file: no longer required on the line
            if action.dest in defaults:
                action.required = False
    namespace = vars(parser.parse_args(rest))
    script_fields = {f.name for f in dataclasses.fields(ScriptArguments)}
    script = ScriptArguments(**{k: v for k, v in namespace.items() if k in script_fields})
    training = {k: v for k, v in namespace.items() if k not in script_fields}
    return script, training


def read_args_file(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArgumentsError(f"cannot read the arguments file {path}: {exc}") from exc
    except ValueError as exc:
        raise ArgumentsError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ArgumentsError(f"{path} must hold one JSON object of arguments")
    return value


def training_arguments(kwargs: dict[str, Any]) -> Any:
    """TrainingArguments, with the settings this trainer relies on."""
    from transformers import TrainingArguments

    # The collator's `shift_labels` and `position_ids` are not forward() parameters of every
    # model; Trainer must not drop them (DISC-MedLLM's sft.json sets the same).
    kwargs = {**kwargs, "remove_unused_columns": False}
    # Evaluation finds the targets under this key.
    # Evaluation reports the loss only: no metrics here need the logits kept across batches.
    kwargs["prediction_loss_only"] = True
    if kwargs.get("label_names") is None:
        kwargs["label_names"] = ["shift_labels"]
    return TrainingArguments(**kwargs)
