"""Every combination of architecture switches builds, learns from a sane start, and is causal."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from autoresearch.config import ModelConfig
from autoresearch.model import GPT

VOCAB, BLOCK = 64, 16
ATTENTION = {"mha": 0, "gqa": 2, "mqa": 1}  # n_kv_head for n_head=4
COMBOS = list(itertools.product(("rope", "learned", "alibi", "none"), ("rms", "layer"),
                                ("gelu", "relu2", "swiglu"), ATTENTION, (False, True), (False, True)))




def tiny(**switches) -> ModelConfig:
    return ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=BLOCK, vocab_size=VOCAB, **switches)


@pytest.mark.parametrize(("pos", "norm", "act", "attn", "qk_norm", "tied"), COMBOS,
                         ids=["-".join(map(str, c)) for c in COMBOS])
def test_every_switch_combination_trains_from_uniform_start_and_is_causal(pos, norm, act, attn, qk_norm, tied):
    torch.manual_seed(0)
    cfg = tiny(pos_encoding=pos, norm=norm, activation=act, n_kv_head=ATTENTION[attn],
               qk_norm=qk_norm, tie_embeddings=tied)
    model = GPT(cfg)
    idx = torch.randint(0, VOCAB, (4, BLOCK))
    targets = torch.randint(0, VOCAB, (4, BLOCK))

    logits, loss = model(idx, targets)
    assert logits.shape == (4, BLOCK, VOCAB) and logits.dtype == torch.float32
    # small init => near-uniform predictions => loss close to ln(V)
    assert abs(loss.item() - math.log(VOCAB)) < 0.15
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.blocks[0].attn.c_attn.weight.grad.abs().sum() > 0

    # causality: a change at position t leaves every earlier position's logits untouched
    model.eval()
    t = BLOCK // 2
    changed = idx.clone()
    changed[:, t] = (changed[:, t] + 1) % VOCAB
    with torch.no_grad():
        before, _ = model(idx)
        after, _ = model(changed)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, t:], before[:, t:])  # ...and does reach the later ones
