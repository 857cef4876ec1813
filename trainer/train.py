"""Supervised fine-tuning of DISC-MedLLM-style chat models (DISC-MedLLM's `train/`: SFTDataset,
collator, TargetLMLoss, a Trainer subclass, a JSON arguments file, DeepSpeed ZeRO-3 bf16).

    deepspeed --num_gpus=8 --module trainer.train --train_args_file trainer/configs/sft.json
    torchrun --nproc_per_node=8 -m trainer.train --train_args_file trainer/configs/sft.json
    python -m trainer.train --train_args_file sft.json --output_dir out   # CPU, small models
    medchat train -f trainer/configs/sft.json          # picks one of the three

(DeepSpeed's launcher spells "run a module" --module; it has no -m.) Arguments after the
file override it. Progress JSON lines go to --progress_file or the descriptor in
MEDCHAT_PROGRESS_FD (trainer/progress.py).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.chatformat import (
    FormatError,
    ModelProfile,
    Tokenizer,
    TokenizerLoadError,
    chat_format,
    get_profile,
    load_tokenizer,
)

from . import checks, progress
from .args import ArgumentsError, ScriptArguments, parse_args, training_arguments
from .data import DataError, Features, build_features, read_conversations, render_samples


@dataclass(frozen=True)
class Prepared:
    """What the pre-flight stage hands to training: nothing here holds model weights."""

    tokenizer: Tokenizer
    profile: ModelProfile
    train_rows: list[Features]
    eval_rows: list[Features] | None
    cuda: bool


def prepare_data(
    script: ScriptArguments, path: str, tokenizer: Tokenizer, profile: ModelProfile
) -> list[Features]:
    """JSONL → conversations → DISC-MedLLM samples → features (packed rows when asked)."""
    from .packing import pack

    samples = render_samples(read_conversations(path), tokenizer, script.max_seq_length, profile)
    features, _ = build_features(samples)
    if not features:
        raise DataError(f"{path}: no row keeps a trained token within max_seq_length")
    return pack(features, script.row_length) if script.packing else features


def preflight(script: ScriptArguments, training: dict[str, Any]) -> Prepared:
    """Everything that can be wrong with the arguments or the data, before any weight loads."""
    import torch

    cuda = torch.cuda.is_available()
    checks.check_launch(script, training, cuda=cuda)
    checks.check_model(script)
    try:
        profile = get_profile(script.profile)
        tokenizer = load_tokenizer(script.model_name_or_path)
        chat_format(tokenizer, profile)  # the tokenizer's ids against the profile's
    except (TokenizerLoadError, FormatError, ValueError) as exc:
        raise checks.PreflightError(str(exc)) from exc
    train_rows = prepare_data(script, script.train_file, tokenizer, profile)
    eval_rows = None
    if script.eval_file:
        eval_rows = prepare_data(script, script.eval_file, tokenizer, profile)
    return Prepared(tokenizer, profile, train_rows, eval_rows, cuda)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Train; returns the summary on rank 0 (None on other ranks)."""
    script, training = parse_args(argv)
    if Path(script.model_name_or_path).is_dir():
        # Absolute, because a saved adapter names its base by this path.
        script.model_name_or_path = str(Path(script.model_name_or_path).resolve())
    try:
        ready = preflight(script, training)
    except (checks.PreflightError, DataError) as exc:
        if progress.is_rank_zero():
            stream = progress.open_stream(script.progress_file)
            progress.write_line(stream, {"event": "error", "message": str(exc)})
            if stream is not None:
                stream.close()
        raise

    from .collator import PadCollator
    from .data import pad_token_id
    from .model import load_model, model_dtype, resolve_isolation
    from .saving import save_final, write_inference_files
    from .sft_trainer import SFTTrainer

    args = training_arguments(training)  # starts DeepSpeed / the process group when asked
    isolation = resolve_isolation(script, cuda=ready.cuda)
    pad_id = pad_token_id(ready.tokenizer, ready.profile)
    model = load_model(script, args, isolation)
    model.config.pad_token_id = pad_id
    callback = progress.ProgressCallback(script.progress_file)
    # FlexAttention compiles per shape: packed rows keep one fixed length on it.
    fixed = script.row_length if isolation == "flex" else None
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=ready.train_rows,
        eval_dataset=ready.eval_rows,
        data_collator=PadCollator(pad_id, pad_to_length=fixed),
        callbacks=[callback],
        isolation=isolation,
        mask_dtype=model_dtype(script, args),
    )
    trainer.train(resume_from_checkpoint=resume_point(args))
    saved = save_final(trainer, script, args.output_dir)  # every rank: ZeRO-3 gathers
    if not trainer.is_world_process_zero():
        return None
    write_inference_files(script, args.output_dir, ready.tokenizer, ready.profile, pad_id)
    return callback.finish(trainer.state, args.output_dir, saved)


def resume_point(args: Any) -> str | None:
    """`resume_from_checkpoint`: a path, or true for the newest complete checkpoint in
    output_dir (a fresh start when there is none yet, so a restarted job just works)."""
    value = args.resume_from_checkpoint
    if value is None or str(value).lower() in ("false", ""):
        return None
    if str(value).lower() == "true":
        return last_complete_checkpoint(Path(args.output_dir))
    return str(value)


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest `checkpoint-N` that the Trainer finished writing. A process killed while
    saving leaves a newer folder without `trainer_state.json` (written last); transformers'
    own `get_last_checkpoint` would pick it and fail on the missing files, so such folders
    are removed (the resumed run writes them again)."""
    steps: list[tuple[int, Path]] = []
    for path in output_dir.glob("checkpoint-*") if output_dir.is_dir() else ():
        step = path.name.removeprefix("checkpoint-")
        if path.is_dir() and step.isdigit():
            steps.append((int(step), path))
    for _, path in sorted(steps, reverse=True):
        if (path / "trainer_state.json").is_file():
            return str(path)
        sys.stderr.write(f"trainer: removing {path.name}, a checkpoint left half-written\n")
        shutil.rmtree(path, ignore_errors=True)
    return None


def run(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: a clear message and status 2 for anything caught before training."""
    try:
        main(argv)
    except (ArgumentsError, checks.PreflightError, DataError) as exc:
        sys.stderr.write(f"trainer: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
