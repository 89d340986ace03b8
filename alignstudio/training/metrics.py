"""The worker's trainer callbacks: one JSON line per log step, cancel between steps, stop on NaN.

`MetricsCallback` appends each training log (loss, rewards/*, logps/*, kl, learning rate, ...) to
metrics.jsonl with the step, wall time, tokens/s and an ETA, and prints one progress line to stdout (which
the runner sends to log.txt). `ControlCallback` reads the run's `cancel` flag at every step end (agreeing
across processes under `accelerate launch`), asks the Trainer to save a checkpoint and stop, and stops a run
whose loss turned NaN/inf without saving the broken weights. Only the main process writes files.
Knows nothing about TRL's trainers beyond the names of the metrics they log.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import TrainerCallback

# Keys from the Trainer's final summary log, kept for the card instead of the metrics stream.
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss")
# Values that must stay finite; a NaN here stops the run.
WATCHED = (
    "loss",
    "grad_norm",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "kl",
)


def _number(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def non_finite(row: dict) -> list[str]:
    """Names of watched metrics in `row` that are NaN or infinite."""
    bad = []
    for key in WATCHED:
        value = row.get(key)
        if isinstance(value, (int, float)) and not math.isfinite(value):
            bad.append(key)
        elif value is None and key in row:
            bad.append(key)  # json cannot carry NaN; we store None for it
    return bad


class TokenCounter:
    """Counts non-padding tokens in every batch the collator builds (for trainers that log no `num_tokens`,
    such as ORPO and CPO/SimPO). Wraps the trainer's data collator."""

    def __init__(self, collator):
        self.collator = collator
        self.tokens = 0

    def __call__(self, features):
        batch = self.collator(features)
        try:
            for key in (
                "chosen_attention_mask",
                "rejected_attention_mask",
                "attention_mask",
                "completion_attention_mask",
            ):
                if key in batch and hasattr(batch[key], "sum"):
                    self.tokens += int(batch[key].sum())
        except Exception:  # counting must never break training
            pass
        return batch


class MetricsCallback(TrainerCallback):
    def __init__(
        self,
        metrics_path: Path,
        *,
        token_counter: TokenCounter | None = None,
        world_size: int = 1,
        is_main: bool = True,
        echo: bool = True,
        on_row=None,
    ):
        self.on_row = on_row
        self.path = Path(metrics_path)
        self.token_counter = token_counter
        self.share: ShareCallback | None = None  # set when the worker shares the CPU with the app
        self.world_size = max(1, world_size)
        self.is_main = is_main
        self.echo = echo
        self.summary: dict = {}
        self.last: dict = {}
        self.nan_at: int | None = None
        self.nan_keys: list[str] = []
        self._t0 = time.time()
        self._start_step = 0
        self._prev_time = self._t0
        self._prev_tokens = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.time()
        self._start_step = state.global_step  # > 0 after a resume
        self._prev_time = self._t0
        self._prev_tokens = 0.0  # TRL's num_tokens and our counter both start at 0 in every process

    def _tokens(self, logs: dict) -> float | None:
        if "num_tokens" in logs and _number(logs["num_tokens"]) is not None:
            return _number(logs["num_tokens"])  # TRL's own count, gathered across processes
        if self.token_counter is not None and self.token_counter.tokens:
            return float(self.token_counter.tokens * self.world_size)
        return None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if any(k in logs for k in SUMMARY_KEYS):
            self.summary.update({k: _number(v) for k, v in logs.items() if _number(v) is not None})
            return
        if any(k.startswith("eval_") for k in logs):
            self._log_eval(state, logs)
            return
        if "loss" not in logs:
            return
        now = time.time()
        row: dict = {
            "step": state.global_step,
            "epoch": _number(state.epoch),
            "time": round(now, 3),
            "elapsed_s": round(now - self._t0, 3),
        }
        for key, value in logs.items():
            number = _number(value)
            if number is None:
                continue
            row[key] = number if math.isfinite(number) else None  # json cannot carry NaN
        self.nan_keys += non_finite(row)
        if self.share is not None and self.share.threads is not None:  # core.cpu_share's plan this step
            row["threads"], row["sharing"] = self.share.threads, self.share.threads < self.share.share.cores
        tokens = self._tokens(logs)
        if tokens is not None:
            row["tokens"] = tokens
            if now > self._prev_time:
                row["tokens_per_s"] = round((tokens - self._prev_tokens) / (now - self._prev_time), 2)
            self._prev_tokens = tokens
        self._prev_time = now
        done = state.global_step - self._start_step
        if state.max_steps and done > 0:
            per_step = (now - self._t0) / done
            row["max_steps"] = state.max_steps
            row["eta_s"] = round(max(0, state.max_steps - state.global_step) * per_step, 1)
        self.last = row
        if self.nan_keys and self.nan_at is None:
            self.nan_at = state.global_step
            control.should_training_stop = True
            control.should_save = False  # never checkpoint NaN weights
        if self.is_main:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            if self.echo:
                print(self.progress_line(row), flush=True)
            if self.on_row is not None:
                try:
                    self.on_row(row)
                except Exception as exc:  # a status write must never stop training
                    print(f"warning: could not update status: {exc}", flush=True)

    def _log_eval(self, state, logs: dict) -> None:
        """A held-out evaluation: a row (keys `eval_*`) in heldout.jsonl beside metrics.jsonl, at its step."""
        row: dict = {"step": state.global_step, "epoch": _number(state.epoch), "time": round(time.time(), 3)}
        for key, value in logs.items():
            number = _number(value)
            if (
                key.startswith("eval_")
                and number is not None
                and not key.startswith(("eval_runtime", "eval_samples", "eval_steps_per"))
            ):
                row[key] = number if math.isfinite(number) else None
        if len(row) > 3 and self.is_main:
            with open(self.path.with_name("heldout.jsonl"), "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            if self.echo:
                print(self.progress_line(row), flush=True)

    @staticmethod
    def progress_line(row: dict) -> str:
        if "eval_loss" in row:
            parts = [f"held-out at step {row['step']}"]
            for key, label in (
                ("eval_loss", "loss"),
                ("eval_rewards/accuracies", "acc"),
                ("eval_accuracy", "acc"),  # a reward model's
                ("eval_rewards/margins", "margin"),
            ):
                if isinstance(row.get(key), (int, float)):
                    parts.append(f"{label} {row[key]:.4g}")
            if isinstance(row.get("eval_drift"), (int, float)):  # drift.DriftCallback: the held-out text's perplexity
                parts.append(f"drift {100 * row['eval_drift']:+.1f}%")
            return "  ".join(parts)
        parts = [f"step {row['step']}" + (f"/{row['max_steps']}" if row.get("max_steps") else "")]
        for key, label in (
            ("loss", "loss"),
            ("rewards/accuracies", "acc"),
            ("rewards/margins", "margin"),
            ("kl", "kl"),
            ("learning_rate", "lr"),
            ("tokens_per_s", "tok/s"),
        ):
            value = row.get(key)
            if isinstance(value, (int, float)):
                parts.append(f"{label} {value:.4g}")
            elif key in row and value is None:
                parts.append(f"{label} nan")
        if row.get("eta_s") is not None:
            parts.append(f"eta {row['eta_s']:.0f}s")
        return "  ".join(parts)


class ControlCallback(TrainerCallback):
    """Cancel between steps via the run's `cancel` flag file."""

    def __init__(self, cancel_path: Path):
        self.cancel_path = Path(cancel_path)
        self.cancelled_at: int | None = None

    def _flag(self) -> bool:
        flag = self.cancel_path.exists()
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                import torch
                from accelerate import PartialState

                tensor = torch.tensor([1.0 if flag else 0.0], device=PartialState().device)
                dist.all_reduce(tensor, op=dist.ReduceOp.MAX)  # every rank stops at the same step
                flag = bool(tensor.item())
        except Exception:
            pass
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self.cancelled_at is None and self._flag():
            self.cancelled_at = state.global_step
            control.should_training_stop = True
            control.should_save = True  # keep where we are; resume continues from here
        return control


class ShareCallback(TrainerCallback):
    """Trains on the cores the app is not sampling on (core.cpu_share): before each step, the thread count
    the plan gives; the worker's flag goes when training ends."""

    def __init__(self, share):
        self.share = share
        self.threads: int | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        import torch

        threads = self.share.worker_threads()
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads

    def on_train_end(self, args, state, control, **kwargs):
        self.share.worker_done()
