"""NanoTrainer: train a GPT under a fixed budget and score it in validation bits per byte.

The loop is deliberately plain (nanoGPT-style): sample a batch, forward, backward, clip, step.
Everything a campaign needs to judge the run comes out of it: a curve of (progress, val_bpb)
points for early stopping, a final ``val_bpb`` on a fixed number of validation bytes, and a
status that says *why* it ended (completed, early_stopped, diverged).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np
import torch

from autoresearch.config import ExperimentConfig
from autoresearch.data import BatchSampler, PreparedData
from autoresearch.result import COMPLETED, DIVERGED, EARLY_STOPPED, RunResult
from autoresearch.model import GPT
from autoresearch.train.device import peak_flops, peak_memory_mb, resolve_device
from autoresearch.train.schedule import Budget, lr_multiplier

log = logging.getLogger(__name__)
LN2 = math.log(2.0)


class ScalarSink(Protocol):
    """Where per-step scalars go besides the curve file (TensorBoard, W&B, nothing)."""

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None: ...


def seed_everything(seed: int) -> None:
    """One run seed drives python, numpy and torch alike (the bundle records this derivation)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _State:
    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    warmup_steps: int = 0
    warmup_seconds: float = 0.0
    last_loss: float = float("nan")
    first_loss: Optional[float] = None
    last_val_bpb: float = float("nan")
    last_lr_mult: float = 0.0
    last_step_seconds: float = 0.0
    interventions: list[dict[str, Any]] = field(default_factory=list)


@torch.no_grad()
def evaluate_bpb(model: torch.nn.Module, tokens: np.ndarray, token_bytes: np.ndarray, block_size: int,
                 batch_size: int, device: torch.device, autocast: contextlib.AbstractContextManager) -> float:
    """Bits per byte of ``tokens``: total NLL (nats) over predicted tokens / (ln 2 × their UTF-8 bytes).

    Independent of the tokenizer, so byte-level and BPE runs are compared on one scale. Windows are
    contiguous and non-overlapping, so every evaluation of the same tokens scores the same targets.
    """
    was_training = model.training
    model.eval()
    n_windows = max((len(tokens) - 1) // block_size, 1)
    span = min(n_windows * block_size + 1, len(tokens))
    data = torch.from_numpy(np.asarray(tokens[:span], dtype=np.int64))
    byte_len = torch.from_numpy(np.asarray(token_bytes, dtype=np.int64))
    total_nats, total_bytes = 0.0, 0
    for start in range(0, n_windows, batch_size):
        rows = range(start, min(start + batch_size, n_windows))
        x = torch.stack([data[r * block_size : (r + 1) * block_size] for r in rows])
        y = torch.stack([data[r * block_size + 1 : (r + 1) * block_size + 1] for r in rows])
        if x.shape[1] == 0:
            break
        with autocast:
            _, loss = model(x.to(device), y.to(device), reduction="none")
        total_nats += float(loss.float().sum())
        total_bytes += int(byte_len[y].sum())
    model.train(was_training)
    return total_nats / (LN2 * max(total_bytes, 1))


class NanoTrainer:
    """Trains one GPT for one budget. Construct, then ``train()``; it never raises on divergence."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        data: PreparedData,
        *,
        curve_path: Optional[Path] = None,
        stop_file: Optional[Path] = None,
        tracker: Optional[ScalarSink] = None,
        cache_dir: Optional[Path] = None,
    ):
        self.cfg = cfg
        self.data = data
        self.curve_path = curve_path
        self.stop_file = stop_file
        self.tracker = tracker
        self.cache_dir = cache_dir
        tcfg = cfg.trainer
        if tcfg.threads > 0:
            torch.set_num_threads(tcfg.threads)
        self.device = resolve_device(tcfg.device)
        seed_everything(cfg.seed)
        model_cfg = cfg.model if cfg.model.vocab_size else replace(cfg.model, vocab_size=data.vocab_size)
        if model_cfg.vocab_size < data.vocab_size:
            raise ValueError(f"model.vocab_size={model_cfg.vocab_size} is smaller than the tokenizer's {data.vocab_size}")
        self.model_cfg = model_cfg
        self._dropout = model_cfg.dropout  # raised by sharpness interventions
        self.model = GPT(model_cfg).to(self.device)
        self.model.activation_checkpointing = tcfg.activation_checkpointing
        self.flops_per_token = self.model.flops_per_token()
        # bf16 autocast only on CUDA: on CPU it is an order of magnitude slower than fp32.
        self.autocast: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.device.type == "cuda" else contextlib.nullcontext
        )
        ocfg = cfg.optim
        groups = self.model.param_groups(weight_decay=ocfg.weight_decay, lr=ocfg.lr, embedding_lr=ocfg.embedding_lr)
        for g in groups:
            g["initial_lr"] = g["lr"]
        self.optimizer = torch.optim.AdamW(
            groups, lr=ocfg.lr, betas=(ocfg.beta1, ocfg.beta2), eps=ocfg.eps,
            **({"fused": True} if self.device.type == "cuda" else {}),
        )
        self.step_fn = torch.compile(self.model) if tcfg.compile else self.model
        micro_tokens = tcfg.batch_size * model_cfg.block_size
        self.accum = max(1, math.ceil(tcfg.tokens_per_step / micro_tokens)) if tcfg.tokens_per_step else 1
        self.tokens_per_step = micro_tokens * self.accum
        self.budget = Budget(tcfg.budget, self.flops_per_token)
        self.sampler = BatchSampler(data.train, tcfg.batch_size, model_cfg.block_size, seed=cfg.seed)
        self.sharpness = None
        if tcfg.sharpness.enabled:
            from autoresearch.train.sharpness import SharpnessMonitor

            self.sharpness = SharpnessMonitor(tcfg.sharpness)
            self._sharp_sampler = BatchSampler(data.train, tcfg.sharpness.batch_size, model_cfg.block_size, seed=cfg.seed + 1)
            self._sharp_gen = torch.Generator().manual_seed(cfg.seed + 2)
        self._val_tokens = data.eval_tokens("val", tcfg.eval_bytes)
        self._final_val_tokens = data.eval_tokens("val", tcfg.final_eval_bytes)
        self._curve_file = None
        self.eval_seconds = 0.0

    # ------------------------------------------------------------------ public
    def train(self) -> RunResult:
        cfg, tcfg = self.cfg, self.cfg.trainer
        t0 = time.perf_counter()
        state = _State()
        status = COMPLETED
        error: Optional[str] = None
        next_eval = 1
        self._curve_file = self.curve_path.open("a") if self.curve_path else None
        self.model.train()
        while True:
            progress = self.budget.progress(seconds=state.train_seconds, steps=state.step, tokens=state.tokens)
            if progress >= 1.0:
                break
            if self.stop_file is not None and self.stop_file.exists():
                status = EARLY_STOPPED
                log.info("stop requested at progress %.3f (step %d)", progress, state.step)
                break
            lr_mult = lr_multiplier(progress, cfg.optim)
            for g in self.optimizer.param_groups:
                g["lr"] = g["initial_lr"] * lr_mult
            step_start = time.perf_counter()
            loss = self._train_step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            elapsed = time.perf_counter() - step_start
            if state.step >= tcfg.untimed_warmup_steps or self.budget.deterministic:
                state.train_seconds += elapsed
            else:
                state.warmup_steps += 1
                state.warmup_seconds += elapsed
            state.step += 1
            state.tokens += self.tokens_per_step
            state.last_loss = loss
            if not math.isfinite(loss):
                status, error = DIVERGED, f"loss is {loss} at step {state.step}"
                break
            if state.first_loss is None:
                state.first_loss = loss
            elif state.step > 10 and loss > tcfg.divergence_factor * state.first_loss:
                status = DIVERGED
                error = f"loss {loss:.3f} exceeds {tcfg.divergence_factor}× the initial {state.first_loss:.3f} at step {state.step}"
                break
            progress = self.budget.progress(seconds=state.train_seconds, steps=state.step, tokens=state.tokens)
            state.last_lr_mult, state.last_step_seconds = lr_mult, elapsed
            if progress >= 1.0:
                break  # the final row (with its evaluation) is written once, after the loop
            row: dict[str, Any] = {}
            if state.step % tcfg.log_every == 0 or state.step == 1:
                row.update(self._train_row(state, progress, lr_mult, elapsed))
            if self.sharpness is not None and state.step % tcfg.sharpness.every == 0:
                row.update(self._sharpness_check(state))
            if next_eval < tcfg.eval_points and progress >= next_eval / tcfg.eval_points:
                while next_eval < tcfg.eval_points and progress >= next_eval / tcfg.eval_points:
                    next_eval += 1
                state.last_val_bpb = self._eval(self._val_tokens)
                row.update(self._train_row(state, progress, lr_mult, elapsed), val_bpb=state.last_val_bpb)
                log.info("step %d progress %.2f val_bpb %.4f", state.step, progress, state.last_val_bpb)
            if row:
                self._emit(state.step, row)
        final_progress = min(self.budget.progress(seconds=state.train_seconds, steps=state.step, tokens=state.tokens), 1.0)
        if status == COMPLETED:
            curve_bpb = self._eval(self._val_tokens)
            final_row = self._train_row(state, 1.0, state.last_lr_mult, state.last_step_seconds)
            self._emit(state.step, {**final_row, "val_bpb": curve_bpb})
            val_bpb = self._eval(self._final_val_tokens)
        elif status == EARLY_STOPPED:
            val_bpb = state.last_val_bpb
        else:
            val_bpb = float("nan")
        if self._curve_file:
            self._curve_file.close()
        total = time.perf_counter() - t0
        tps = state.tokens / state.train_seconds if state.train_seconds > 0 else 0.0
        peak = peak_flops(self.device, tcfg.peak_flops, self.cache_dir)
        mfu = 100.0 * self.flops_per_token * tps / peak if peak and math.isfinite(peak) else float("nan")
        return RunResult(
            status=status,
            val_bpb=val_bpb,
            training_seconds=state.train_seconds,
            warmup_steps=state.warmup_steps,
            warmup_seconds=state.warmup_seconds,
            eval_seconds=self.eval_seconds,
            total_seconds=total,
            peak_memory_mb=peak_memory_mb(self.device),
            mfu_percent=mfu,
            total_tokens_M=state.tokens / 1e6,
            num_steps=state.step,
            num_params_M=self.model.num_params() / 1e6,
            depth=self.model_cfg.n_layer,
            tokens_per_second=tps,
            final_train_loss=state.last_loss,
            progress=final_progress,
            device=self.device.type,
            seed=self.cfg.seed,
            error=error,
            interventions=state.interventions,
        )

    def evaluate_split(self, split: str, n_bytes: int) -> float:
        """Score the current weights on ``split``. ``test`` is read only through this explicit call."""
        tokens = self.data.eval_tokens(split, n_bytes)
        return self._eval(tokens)

    # ------------------------------------------------------------------ internals
    def _train_step(self) -> float:
        total = 0.0
        for _ in range(self.accum):
            x, y = self.sampler.next()
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self.autocast():
                _, loss = self.step_fn(x, y)
            (loss / self.accum).backward()
            total += loss.detach()
        if self.cfg.trainer.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.trainer.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(total) / self.accum

    def _eval(self, tokens: np.ndarray) -> float:
        start = time.perf_counter()
        try:
            return evaluate_bpb(self.model, tokens, self.data.tokenizer.token_byte_lengths, self.model_cfg.block_size,
                                self.cfg.trainer.batch_size, self.device, self.autocast())
        finally:
            self.eval_seconds += time.perf_counter() - start

    def _train_row(self, state: _State, progress: float, lr_mult: float, step_seconds: float) -> dict[str, Any]:
        return {
            "tokens": state.tokens,
            "seconds": round(state.train_seconds, 4),
            "flops": state.tokens * self.flops_per_token,
            "progress": round(min(progress, 1.0), 6),
            "lr": self.cfg.optim.lr * lr_mult,
            "train_loss": state.last_loss,
            "tokens_per_s": self.tokens_per_step / step_seconds if step_seconds > 0 else 0.0,
        }

    def _sharpness_check(self, state: _State) -> dict[str, Any]:
        from autoresearch.train.sharpness import hutchinson_trace, hvp_forward

        scfg = self.cfg.trainer.sharpness
        x, y = self._sharp_sampler.next()
        params = [p for p in self.model.parameters() if p.requires_grad]
        was_training = self.model.training
        self.model.eval()  # curvature of the loss itself, without dropout noise
        with torch.autocast(self.device.type, enabled=False), hvp_forward():
            _, loss = self.model(x.to(self.device), y.to(self.device))
        trace = hutchinson_trace(loss, params, scfg.probes, self._sharp_gen)
        self.model.train(was_training)
        self.optimizer.zero_grad(set_to_none=True)
        row: dict[str, Any] = {"sharpness": trace}
        intervention = self.sharpness.update(state.step, trace)
        if intervention is not None:
            for g in self.optimizer.param_groups:
                if g["weight_decay"] > 0:
                    g["weight_decay"] += intervention.weight_decay_delta
            self._dropout = min(self._dropout + intervention.dropout_delta, 0.9)
            self.model.set_dropout(self._dropout)
            record = {**asdict(intervention), "dropout": self._dropout}
            state.interventions.append(record)
            row["intervention"] = record
            log.warning("sharpness %.3g at step %d: %s; raised regularisation", trace, state.step, intervention.reason)
        return row

    def _emit(self, step: int, row: dict[str, Any]) -> None:
        row = {"step": step, **row}
        if self._curve_file:
            self._curve_file.write(json.dumps(row) + "\n")
            self._curve_file.flush()
        if self.tracker is not None:
            scalars = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
            self.tracker.log_scalars(step, scalars)
