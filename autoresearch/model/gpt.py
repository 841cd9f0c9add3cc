"""A small GPT whose architecture is switched by ``ModelConfig``.

Read top-down: positional encodings, attention, MLP, block, then the GPT itself and its
bookkeeping (parameter counts, FLOPs, optimiser groups). Every switch an experiment may flip
lives in ``autoresearch.config.ModelConfig``; this module only turns the switches into tensors.

Shapes in comments use B = batch, T = sequence length, C = n_embd, H = n_head,
Hkv = key/value heads (GQA/MQA), D = head dim (C // H), V = vocab size, F = MLP hidden width.

Speed notes (measured on CPU with ``bench/model_step.py``; the same choices are fine on GPU):
- q, k and v come from one fused projection and are only ever *viewed*, never copied, on their
  way into ``scaled_dot_product_attention``, which accepts strided inputs.
- rotary cos/sin and the ALiBi bias are precomputed once for ``block_size`` and sliced; rope
  rotates by a complex multiply (see ``apply_rotary``), relu² has a direct backward.
- GQA/MQA hands the un-expanded k/v to SDPA with ``enable_gqa=True``: ~10% faster than
  ``repeat_interleave`` for causal attention on CPU, equal with the ALiBi mask, and it never
  materialises the repeated heads.
- With the reference's switches this model steps as fast as a plain nanoGPT. The default
  switches cost ~8% on CPU, most of it ``nn.RMSNorm``, whose CPU kernel is not fused (about
  4x the time of ``nn.LayerNorm``); ``torch.compile`` fuses it.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from autoresearch.config import ConfigError, ConfigProblem, ModelConfig

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- validation
def _checked(cfg: ModelConfig) -> ModelConfig:
    """Refuse a config the model cannot be built from, naming every bad key at once.

    Raises ``ConfigError`` (a ``ValueError``), which the command line prints as one line per key.
    """
    problems = list(cfg.problems())
    if cfg.vocab_size <= 0:
        problems.append(ConfigProblem(
            "model.vocab_size",
            f"must be > 0 when the model is built, got {cfg.vocab_size} "
            "(set it from the tokenizer's vocabulary size before building the GPT)"))
    if problems:
        raise ConfigError(problems)
    return cfg


def _mlp_hidden(cfg: ModelConfig) -> int:
    """Hidden width F of the MLP.

    SwiGLU has three matrices instead of two, so its width is 2/3 of the plain one (rounded up
    to a multiple of 8 for friendly matmul shapes): the parameter count then stays close to the
    gelu/relu² MLP and an activation comparison is not a capacity comparison.
    """
    if cfg.activation == "swiglu":
        hidden = int(2 / 3 * cfg.mlp_ratio * cfg.n_embd)
        return (hidden + 7) // 8 * 8
    return int(cfg.mlp_ratio * cfg.n_embd)


def _matmul_params(cfg: ModelConfig) -> int:
    """Weights that take part in a matmul for every token: block linears and the LM head.

    Embedding tables are lookups (no FLOPs); norms and biases are elementwise and negligible.
    A tied LM head still multiplies, so it counts here even though it shares the embedding.
    """
    C, D, H, Hkv = cfg.n_embd, cfg.n_embd // cfg.n_head, cfg.n_head, cfg.kv_heads
    attn = C * (H + 2 * Hkv) * D + H * D * C  # fused qkv + output projection
    n_mats = 3 if cfg.activation == "swiglu" else 2
    mlp = n_mats * C * _mlp_hidden(cfg)
    return cfg.n_layer * (attn + mlp) + C * cfg.vocab_size


def flops_per_token(cfg: ModelConfig) -> float:
    """Training FLOPs per token (forward + backward) of a GPT built from ``cfg``.

    ``6 * N`` for the matmul weights N (2 FLOPs per multiply-add, times 3 for forward and the
    two backward matmuls) plus the attention scores and weighted values, ``12 * L * C * T``,
    as in PaLM (appendix B) and nanoGPT's ``estimate_mfu``. Causal masking is not discounted
    (the usual convention). GQA needs no adjustment: every query head still attends over T
    keys, and the smaller k/v projections are already in N.
    """
    _checked(cfg)
    attention = 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    return float(6 * _matmul_params(cfg) + attention)


# --------------------------------------------------------------------------- positions
def rotary_tables(block_size: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, each (T, D/2): position t, frequency pair i."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), inv_freq)  # (T, D/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each channel pair (2i, 2i+1) of x (B, T, h, D) by its position's angle i.

    cos, sin: (T, 1, D/2), broadcast over batch and heads. In eager mode the pairs are read as
    complex numbers and rotated by one complex multiply: one kernel forward and one backward,
    measured ~3x cheaper on CPU than the half-split form's slices, products and cat. Inductor
    cannot generate code for complex tensors, so under ``torch.compile`` the same rotation is
    written out in reals, which it fuses into one kernel anyway. Math runs in at least float32.
    """
    pairs = x.to(torch.promote_types(x.dtype, torch.float32)).unflatten(-1, (-1, 2))  # (B, T, h, D/2, 2)
    if torch.compiler.is_compiling():
        real, imag = pairs.unbind(-1)  # (B, T, h, D/2) each
        rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    else:
        rotated = torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin))
    return rotated.flatten(-2).type_as(x)  # (B, T, h, D)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """Per-head ALiBi slopes (Press et al. 2022): a geometric sequence 2^(-8/n), 2^(-16/n), ...

    For a head count that is not a power of two, the paper takes the slopes of the next lower
    power of two and fills up with every other slope of the next higher one.
    """

    def geometric(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    lower = 2 ** math.floor(math.log2(n_head))
    slopes = geometric(lower)
    if lower < n_head:
        slopes += geometric(2 * lower)[0::2][: n_head - lower]
    return torch.tensor(slopes, dtype=torch.float32)  # (H,)


def alibi_bias(n_head: int, block_size: int) -> torch.Tensor:
    """Additive attention bias (H, T, T): -slope * distance to the past, -inf for the future.

    Causality lives in this bias, so SDPA is called with it and ``is_causal=False``.
    """
    pos = torch.arange(block_size)
    distance = (pos[:, None] - pos[None, :]).float()  # (T, T): query i minus key j
    bias = -alibi_slopes(n_head)[:, None, None] * distance  # (H, T, T)
    return bias.masked_fill(distance < 0, float("-inf"))


# --------------------------------------------------------------------------- layers
def _norm(cfg: ModelConfig, dim: int) -> nn.Module:
    if cfg.norm == "rms":
        return nn.RMSNorm(dim)  # no bias: RMSNorm has none by design
    return nn.LayerNorm(dim, bias=cfg.bias)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional GQA/MQA, QK-norm, rope or ALiBi."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv_head = cfg.n_head, cfg.kv_heads
        self.head_dim = cfg.n_embd // cfg.n_head
        # one matmul for q, k and v: H query heads, then Hkv key heads, then Hkv value heads
        qkv_dim = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.c_attn = nn.Linear(cfg.n_embd, qkv_dim, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        # QK-norm (RMS over each head's channels, learned gain shared by heads) keeps the
        # attention logits bounded, which tolerates higher learning rates
        self.q_norm = nn.RMSNorm(self.head_dim) if cfg.qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim) if cfg.qk_norm else None
        self.dropout = cfg.dropout  # attention-probability dropout; set_dropout may change it
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None,
                bias: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        H, Hkv, D = self.n_head, self.n_kv_head, self.head_dim
        q, k, v = self.c_attn(x).split((H * D, Hkv * D, Hkv * D), dim=-1)
        q = q.view(B, T, H, D)  # (B, T, H, D): views of the fused output, no copies
        k = k.view(B, T, Hkv, D)  # (B, T, Hkv, D)
        v = v.view(B, T, Hkv, D)  # (B, T, Hkv, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # normalise before rotating
        if rotary is not None:
            cos, sin = rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=bias,  # ALiBi: (H, T, T) with -inf above the diagonal; otherwise None
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=bias is None,
            enable_gqa=Hkv != H,  # k/v heads are shared by groups of H / Hkv query heads
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class ReLUSquared(torch.autograd.Function):
    """relu(x)² (So et al., Primer) with a one-line backward: d/dx = 2·relu(x).

    Autograd's own chain for ``F.relu(x).square()`` spends two extra passes over the (B, T, F)
    activation (pow's backward, then relu's mask); this form was as cheap as gelu on CPU.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (r,) = ctx.saved_tensors
        return grad * (r + r)


class MLP(nn.Module):
    """Position-wise feed-forward: C -> F -> C with gelu, relu² or SwiGLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.activation = cfg.activation
        hidden = _mlp_hidden(cfg)
        # SwiGLU's gate and value projections are fused into one matmul of width 2F
        width = 2 * hidden if cfg.activation == "swiglu" else hidden
        self.c_fc = nn.Linear(cfg.n_embd, width, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)  # (B, T, F) or (B, T, 2F) for SwiGLU
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "relu2":
            h = ReLUSquared.apply(h)
        else:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value  # (B, T, F)
        return self.dropout(self.c_proj(h))  # (B, T, C)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = _norm(cfg, cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = _norm(cfg, cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None,
                bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rotary, bias)
        return x + self.mlp(self.ln_2(x))


# --------------------------------------------------------------------------- the model
class GPT(nn.Module):
    """Decoder-only language model built from a ``ModelConfig``.

    ``activation_checkpointing`` (default False) recomputes each block's activations in the
    backward pass instead of storing them: less memory, about a third more compute.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        # the model owns a copy: set_dropout updates it without touching the caller's config
        self.cfg = cfg = dataclasses.replace(_checked(cfg))
        self.activation_checkpointing = False

        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos_encoding == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = _norm(cfg, cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one (V, C) matrix reads and writes tokens

        # Position tables are derived from the config, so they are not saved with the weights.
        head_dim = cfg.n_embd // cfg.n_head
        if cfg.pos_encoding == "rope":
            cos, sin = rotary_tables(cfg.block_size, head_dim, cfg.rope_base)
            self.register_buffer("rope_cos", cos[:, None, :], persistent=False)  # (T, 1, D/2)
            self.register_buffer("rope_sin", sin[:, None, :], persistent=False)  # (T, 1, D/2)
        if cfg.pos_encoding == "alibi":
            self.register_buffer("alibi", alibi_bias(cfg.n_head, cfg.block_size), persistent=False)

        self._init_weights()
        log.info("GPT: %.2fM parameters (%.2fM without embeddings)",
                 self.num_params() / 1e6, self.num_params(non_embedding=True) / 1e6)

    def _init_weights(self) -> None:
        """GPT-2 init: N(0, init_std) everywhere, zero biases, and the two projections that
        write into the residual stream scaled by 1/sqrt(2 * n_layer), so the stream's variance
        does not grow with depth (each block adds two such writes)."""
        std = self.cfg.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(proj.weight, mean=0.0, std=std / math.sqrt(2 * self.cfg.n_layer))

    # ----------------------------------------------------------------------- forward
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V) in float32, and the loss when targets are given.

        ``reduction="mean"``: scalar mean cross-entropy in nats over targets != -1.
        ``reduction="none"``: per-token nats (B, T) (0 where the target is -1), so the caller can
        weight tokens by their byte length for bits per byte.
        Full logits are always returned; at these vocabulary sizes they cost little.
        """
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds model.block_size={self.cfg.block_size}")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")

        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe.weight[:T]  # (T, C) broadcast over the batch
        x = self.drop(x)
        rotary = (self.rope_cos[:T], self.rope_sin[:T]) if self.cfg.pos_encoding == "rope" else None
        bias = self.alibi[:, :T, :T] if self.cfg.pos_encoding == "alibi" else None

        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if recompute:
                x = checkpoint(block, x, rotary, bias, use_reentrant=False)
            else:
                x = block(x, rotary, bias)
        x = self.ln_f(x)
        logits = self.lm_head(x).float()  # (B, T, V); float32 even under bf16 autocast

        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T),
                               ignore_index=-1, reduction=reduction)
        return logits, (loss.view(B, T) if reduction == "none" else loss)

    # ----------------------------------------------------------------------- run-time knobs
    def set_dropout(self, p: float) -> None:
        """Change every dropout rate (embedding, attention, residual) while training.

        The sharpness critic raises dropout mid-run; no module needs rebuilding.
        """
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p!r}")
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p
            elif isinstance(module, CausalSelfAttention):
                module.dropout = p
        self.cfg.dropout = p

    # ----------------------------------------------------------------------- bookkeeping
    def num_params(self, non_embedding: bool = False) -> int:
        """Number of (unique) parameters.

        ``non_embedding=True`` leaves out the token and position tables (Kaplan et al.): with
        tied embeddings that also leaves out the LM head, which is the same matrix.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel()
            if self.wpe is not None:
                n -= self.wpe.weight.numel()
        return n

    def flops_per_token(self) -> float:
        """Training FLOPs per token; see the module-level ``flops_per_token``."""
        return flops_per_token(self.cfg)

    def param_groups(self, weight_decay: float, lr: float, embedding_lr: float = 0.0) -> list[dict]:
        """AdamW parameter groups, each with "name", "params", "lr" and "weight_decay".

        - "matrices": 2-D weights of the blocks' linear layers, decayed at ``lr``.
        - "lm_head": the untied output matrix, decayed at ``lr`` (it is a linear layer; giving
          it the embedding rate would be the wrong way round: nanochat runs it *slower*).
        - "embeddings": token (and tied head) and position tables, not decayed (decay would
          shrink rows of rare tokens that get no gradient), at ``embedding_lr`` when > 0.
        - "gains_biases": norm gains and biases, not decayed (decay would pull gains to 0).
        Groups without parameters are left out.
        """
        embeddings = [self.wte.weight] + ([self.wpe.weight] if self.wpe is not None else [])
        lm_head = [] if self.cfg.tie_embeddings else [self.lm_head.weight]
        special = {id(p) for p in embeddings + lm_head}
        matrices, vectors = [], []
        for p in self.parameters():
            if id(p) in special or not p.requires_grad:
                continue
            (matrices if p.dim() >= 2 else vectors).append(p)
        embedding_lr = embedding_lr if embedding_lr > 0 else lr
        groups = [
            {"name": "matrices", "params": matrices, "lr": lr, "weight_decay": weight_decay},
            {"name": "lm_head", "params": lm_head, "lr": lr, "weight_decay": weight_decay},
            {"name": "embeddings", "params": embeddings, "lr": embedding_lr, "weight_decay": 0.0},
            {"name": "gains_biases", "params": vectors, "lr": lr, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]
