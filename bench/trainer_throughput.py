"""NanoTrainer throughput (tokens/s, MFU) for three model sizes, against a plain nanoGPT-style loop.

The trainer is timed end to end as a campaign runs it — real data batches, lr schedule, gradient
clipping, curve logging — with a steps budget and evaluation kept out of the timing. The
reference is the minimal loop of ``bench/model_step.py`` (learned positions, LayerNorm, GELU,
tied embeddings, SDPA) on a fixed batch. Both run in this process, interleaved round by round,
so a busy machine slows them alike; the median round is reported.

    python bench/trainer_throughput.py                  # CPU, 2 threads
    python bench/trainer_throughput.py --device cuda    # on a GPU (bf16 autocast)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_step import SIZES, VOCAB, RefGPT, Runner  # noqa: E402

from autoresearch.config import compose, to_experiment_config  # noqa: E402
from autoresearch.data import prepare_data  # noqa: E402
from autoresearch.train import NanoTrainer, peak_flops, tune_allocator  # noqa: E402


def trainer_for(size: str, batch: int, device: str, steps: int) -> NanoTrainer:
    n_layer, n_embd, n_head, block = SIZES[size]
    cfg = to_experiment_config(compose([
        f"model.n_layer={n_layer}", f"model.n_embd={n_embd}", f"model.n_head={n_head}", f"model.block_size={block}",
        f"trainer.batch_size={batch}", f"trainer.device={device}", "trainer.budget.kind=steps",
        f"trainer.budget.value={steps}", "trainer.eval_points=1", "trainer.untimed_warmup_steps=0", "logger=none",
    ]))
    return NanoTrainer(cfg, prepare_data(cfg.data))


def time_trainer(size: str, batch: int, device: str, steps: int, rounds: int) -> tuple[float, float, float]:
    """Median tokens/s over ``rounds`` trainings of ``steps`` steps; MFU from the trainer's own count."""
    rates, mfus = [], []
    for _ in range(rounds + 1):  # the first round warms caches and the allocator
        trainer = trainer_for(size, batch, device, steps)
        result = trainer.train()
        rates.append(result.tokens_per_second)
        mfus.append(result.mfu_percent)
    return statistics.median(rates[1:]), statistics.median(mfus[1:]), trainer.model.num_params() / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(SIZES))
    args = ap.parse_args()
    tune_allocator()  # as the run entry points do; the reference shares the process, so it gains too
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peak = peak_flops(device)
    print(f"device {device}, {torch.get_num_threads()} threads, peak {peak / 1e9:.1f} GFLOP/s "
          f"({'measured fp32 matmul' if device.type == 'cpu' else 'table'})")
    print(f"{'size':<7}{'params':>9}{'trainer tok/s':>15}{'MFU %':>8}{'reference tok/s':>17}{'ratio':>7}")
    for size in args.sizes.split(","):
        n_layer, n_embd, n_head, block = SIZES[size]
        ref = Runner(RefGPT(n_layer, n_embd, n_head, block, VOCAB).to(device), args.batch, block)
        ref.x, ref.y = ref.x.to(device), ref.y.to(device)
        ref.round(2)
        ref.rates.clear()
        rates = []
        for _ in range(args.rounds):
            ref.round(args.steps)
            rates.append(time_trainer(size, args.batch, args.device, args.steps, 1))
        ours = statistics.median(r[0] for r in rates)
        mfu = statistics.median(r[1] for r in rates)
        print(f"{size:<7}{rates[0][2]:>8.2f}M{ours:>15,.0f}{mfu:>8.2f}{ref.tokens_per_s:>17,.0f}"
              f"{ours / ref.tokens_per_s:>7.2f}")


if __name__ == "__main__":
    main()
