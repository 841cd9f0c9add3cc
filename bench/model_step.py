"""Training-step throughput of autoresearch's GPT against a plain nanoGPT-style reference.

One step = forward + backward + AdamW step, fp32, on CPU by default. For each size the
reference, our GPT with the reference's switches ("equal") and our default switches
("default") are timed in the same process, in interleaved rounds so that a noisy shared
machine slows all three alike; the median round is reported.

    python bench/model_step.py                 # 2 threads, three sizes, wall clock
    python bench/model_step.py --malloc tuned  # glibc keeps freed memory: no page faults per step
    python bench/model_step.py --threads 1 --clock cpu --sizes 4x128   # on a shared, busy machine

``--malloc tuned`` raises glibc's mmap and trim thresholds before anything is allocated. By
default every large activation is a fresh mmap whose pages fault in on first touch, which
costs more than many of the elementwise kernels themselves; the tuning is for the whole
process, so it belongs to whoever owns the process (the trainer), not to the model.
``--clock cpu`` divides by the process's CPU time instead of wall time: on a machine shared
with other jobs it measures the work rather than the wait (use it with one thread).

The default config does more work than the reference (rope and QK-norm) and a little less
(no biases, relu² instead of gelu); "equal" isolates the cost of our code structure.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from autoresearch.config import ModelConfig
from autoresearch.model import GPT

VOCAB = 256  # byte-level, as the default data config
SIZES = {  # name: (n_layer, n_embd, n_head, block_size)
    "2x64": (2, 64, 2, 64),
    "4x128": (4, 128, 4, 128),
    "6x192": (6, 192, 6, 128),
}
EQUAL_SWITCHES = dict(pos_encoding="learned", norm="layer", activation="gelu", qk_norm=False,
                      tie_embeddings=True, bias=True)


# --------------------------------------------------------------------------- the reference
class RefBlock(nn.Module):
    """nanoGPT's block: LayerNorm with bias, fused qkv, SDPA, GELU MLP."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.attn_proj = nn.Linear(n_embd, n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class RefGPT(nn.Module):
    """nanoGPT's GPT: learned positions, tied embeddings, final LayerNorm."""

    def __init__(self, n_layer: int, n_embd: int, n_head: int, block_size: int, vocab: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(RefBlock(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    def param_groups(self, weight_decay: float, lr: float) -> list[dict]:
        params = list(self.parameters())
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "lr": lr},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr": lr}]


# --------------------------------------------------------------------------- timing
class Runner:
    """A model, its AdamW and a fixed random batch; ``round(n)`` times n steps."""

    def __init__(self, model: nn.Module, batch: int, block_size: int, compile: bool = False):
        self.opt = torch.optim.AdamW(model.param_groups(0.1, 1e-3), betas=(0.9, 0.95))
        self.model = torch.compile(model.train()) if compile else model.train()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, VOCAB, (batch, block_size), generator=g)
        self.y = torch.randint(0, VOCAB, (batch, block_size), generator=g)
        self.tokens = batch * block_size
        self.rates: list[float] = []

    def step(self) -> None:
        _, loss = self.model(self.x, self.y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def round(self, steps: int, clock=time.perf_counter) -> None:
        t0 = clock()
        for _ in range(steps):
            self.step()
        self.rates.append(steps * self.tokens / (clock() - t0))

    @property
    def tokens_per_s(self) -> float:
        return statistics.median(self.rates)


def bench_size(name: str, batch: int, steps: int, rounds: int, clock, compile: bool) -> dict[str, float]:
    n_layer, n_embd, n_head, block_size = SIZES[name]
    shape = dict(n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size, vocab_size=VOCAB)
    torch.manual_seed(0)
    runners = {
        "reference": Runner(RefGPT(n_layer, n_embd, n_head, block_size, VOCAB), batch, block_size, compile),
        "equal": Runner(GPT(ModelConfig(**shape, **EQUAL_SWITCHES)), batch, block_size, compile),
        "default": Runner(GPT(ModelConfig(**shape)), batch, block_size, compile),
    }
    for r in runners.values():  # warm-up: allocator, AdamW state, kernel selection, compilation
        r.round(2)
        r.rates.clear()
    for _ in range(rounds):
        for r in runners.values():
            r.round(steps, clock)
    return {k: r.tokens_per_s for k, r in runners.items()}


def tune_glibc_malloc() -> bool:
    """Keep freed blocks up to 32 MiB in the heap and never trim it (glibc only)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is kept")
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated from {list(SIZES)}")
    ap.add_argument("--malloc", choices=("system", "tuned"), default="system",
                    help="tuned: glibc mallopt so activations reuse memory (see the module docstring)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: tokens per process CPU-second, for busy shared machines")
    ap.add_argument("--compile", action="store_true", help="torch.compile all three models first")
    args = ap.parse_args()
    malloc = "tuned" if args.malloc == "tuned" and tune_glibc_malloc() else "system"
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    print(f"torch {torch.__version__}, cpu, {args.threads} threads, fp32, batch {args.batch}, AdamW, "
          f"median of {args.rounds} rounds x {args.steps} steps, {args.clock} clock, {malloc} malloc, "
          f"load average {os.getloadavg()[0]:.1f}{', compiled' if args.compile else ''}")
    print(f"{'size':>7} {'ctx':>4} | {'reference':>10} {'equal':>10} {'default':>10} tok/s"
          f" | {'equal/ref':>9} {'default/ref':>11}")
    for name in args.sizes.split(","):
        r = bench_size(name, args.batch, args.steps, args.rounds, clock, args.compile)
        ctx = SIZES[name][3]
        print(f"{name:>7} {ctx:>4} | {r['reference']:>10.0f} {r['equal']:>10.0f} {r['default']:>10.0f}"
              f"       | {r['equal'] / r['reference']:>9.3f} {r['default'] / r['reference']:>11.3f}",
              flush=True)
    cores = os.cpu_count() or 1
    print(f"load average {os.getloadavg()[0]:.1f} at the end ({cores} cores: above ~{cores} the machine was shared)")


if __name__ == "__main__":
    main()
