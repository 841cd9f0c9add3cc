"""Measure what one sharpness estimate costs, relative to one training step.

    python -m autoresearch.train._sharpness_cost [--probes 4] [--repeats 5] [--device cpu]

Builds the project's default GPT (4 layers × 128 wide, 128-token context, byte vocabulary),
times a training step (forward + backward + AdamW on ``trainer.batch_size`` sequences) and a
Hutchinson estimate (``trainer.sharpness.probes`` Hessian-vector products on
``trainer.sharpness.batch_size`` sequences), interleaved so that a busy machine slows both alike,
and prints the medians and their ratio. With an estimate every N steps the overhead on training
time is ratio / N.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from autoresearch.config import ModelConfig, SharpnessConfig, TrainerConfig
from autoresearch.train.sharpness import hutchinson_trace, hvp_forward


def measure(*, probes: int, repeats: int, device: str, threads: int) -> dict[str, float]:
    from autoresearch.model import GPT

    if threads:
        torch.set_num_threads(threads)
    tcfg, scfg = TrainerConfig(), SharpnessConfig(probes=probes)
    mcfg = ModelConfig(vocab_size=256)
    torch.manual_seed(0)
    model = GPT(mcfg).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, mcfg.block_size + 1), generator=gen).to(device)
        return x[:, :-1], x[:, 1:]

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def train_step() -> None:
        x, y = batch(tcfg.batch_size)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def estimate() -> None:
        x, y = batch(scfg.batch_size)
        with hvp_forward():
            _, loss = model(x, y)
        hutchinson_trace(loss, params, scfg.probes, gen)
        opt.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up: allocator, kernels
        train_step()
        estimate()
    steps, estimates = [], []
    for _ in range(repeats):
        for fn, out in ((train_step, steps), (estimate, estimates)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    step_s, est_s = statistics.median(steps), statistics.median(estimates)
    return {"train_step_s": step_s, "estimate_s": est_s, "ratio": est_s / step_s,
            "train_batch": tcfg.batch_size, "sharpness_batch": scfg.batch_size, "probes": probes}


def main() -> None:
    ap = argparse.ArgumentParser(description="cost of one Hutchinson sharpness estimate vs one training step")
    ap.add_argument("--probes", type=int, default=SharpnessConfig.probes)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads on CPU (0: torch's default)")
    args = ap.parse_args()
    r = measure(probes=args.probes, repeats=args.repeats, device=args.device, threads=args.threads)
    every = SharpnessConfig.every
    print(f"GPT 4x128 (block 128, byte vocab) on {args.device}: training step ({r['train_batch']} seqs) "
          f"{1000 * r['train_step_s']:.0f} ms; estimate ({r['probes']} probes, {r['sharpness_batch']} seqs) "
          f"{1000 * r['estimate_s']:.0f} ms; ratio {r['ratio']:.2f} step(s); "
          f"overhead every {every} steps: {100 * r['ratio'] / every:.1f} %")


if __name__ == "__main__":
    main()
