"""The GPT's public face: counts, FLOPs, optimiser groups, dropout, checkpointing, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from autoresearch.config import ConfigError, ModelConfig
from autoresearch.model import GPT, flops_per_token
from autoresearch.model.gpt import alibi_slopes, apply_rotary, rotary_tables

VOCAB = 64




def tiny(**overrides) -> ModelConfig:
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16, vocab_size=VOCAB)
    return ModelConfig(**{**base, **overrides})


def batch(B: int = 4, T: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (B, T), generator=g), torch.randint(0, VOCAB, (B, T), generator=g)


# --------------------------------------------------------------------------- counts and FLOPs
def test_param_count_matches_hand_formula_for_gqa_rope_rms_relu2_untied():
    V, C, L, H, Hkv, D = VOCAB, 32, 2, 4, 2, 8
    model = GPT(tiny(n_kv_head=Hkv))  # defaults: rope, rms, relu2, qk_norm, untied, no bias
    per_block = (
        C  # ln_1 gain
        + C * (H + 2 * Hkv) * D  # fused qkv
        + C * C  # attention output projection
        + 2 * D  # q_norm and k_norm gains
        + C  # ln_2 gain
        + 2 * C * 4 * C  # MLP up and down
    )
    expected = V * C + L * per_block + C + C * V  # wte, blocks, ln_f, lm_head
    assert model.num_params() == expected == 26816
    assert model.num_params(non_embedding=True) == expected - V * C


def test_param_count_matches_hand_formula_for_learned_layernorm_bias_swiglu_tied():
    V, C, L, T = VOCAB, 32, 2, 16
    F = 88  # int(2/3 * 4 * 32) = 85, rounded up to a multiple of 8
    model = GPT(tiny(pos_encoding="learned", norm="layer", bias=True, activation="swiglu",
                     tie_embeddings=True, qk_norm=False))
    per_block = (
        2 * C  # ln_1 gain and bias
        + C * 3 * C + 3 * C  # fused qkv with bias
        + C * C + C  # projection with bias
        + 2 * C  # ln_2
        + C * 2 * F + 2 * F  # fused gate+value with bias
        + F * C + C  # down projection with bias
    )
    expected = V * C + T * C + L * per_block + 2 * C  # wte (= lm_head), wpe, blocks, ln_f
    assert model.num_params() == expected
    assert model.num_params(non_embedding=True) == expected - V * C - T * C


def test_swiglu_keeps_the_mlp_parameter_count_close_to_the_plain_one():
    plain = GPT(tiny(n_embd=128, activation="gelu")).num_params()
    swiglu = GPT(tiny(n_embd=128, activation="swiglu")).num_params()
    assert abs(swiglu - plain) / plain < 0.01


@pytest.mark.parametrize("switches", [{}, {"n_kv_head": 1, "activation": "swiglu"},
                                      {"tie_embeddings": True, "bias": True, "pos_encoding": "learned"}])
def test_flops_per_token_is_six_per_matmul_weight_plus_attention(switches):
    cfg = tiny(**switches)
    model = GPT(cfg)
    matmul_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    expected = 6 * matmul_weights + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    assert model.flops_per_token() == flops_per_token(cfg) == float(expected)


def test_flops_per_token_needs_a_vocabulary():
    with pytest.raises(ValueError, match="model.vocab_size"):
        flops_per_token(tiny(vocab_size=0))


# --------------------------------------------------------------------------- forward contract
def test_reduction_none_gives_per_token_nats_whose_mean_is_the_loss():
    model = GPT(tiny())
    idx, targets = batch()
    _, mean_loss = model(idx, targets)
    logits, per_token = model(idx, targets, reduction="none")
    assert per_token.shape == idx.shape
    torch.testing.assert_close(per_token.mean(), mean_loss)
    manual = -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    torch.testing.assert_close(per_token, manual)


def test_targets_of_minus_one_are_ignored():
    model = GPT(tiny())
    idx, targets = batch()
    masked = targets.clone()
    masked[:, :8] = -1
    _, per_token = model(idx, masked, reduction="none")
    assert (per_token[:, :8] == 0).all() and (per_token[:, 8:] > 0).all()
    _, mean_loss = model(idx, masked)
    torch.testing.assert_close(mean_loss, per_token[:, 8:].mean())


def test_shorter_sequences_work_and_longer_ones_are_refused():
    for pos in ("rope", "learned", "alibi", "none"):
        model = GPT(tiny(pos_encoding=pos))
        logits, _ = model(batch(T=5)[0])
        assert logits.shape == (4, 5, VOCAB)
        with pytest.raises(ValueError, match="block_size=16"):
            model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        model(*batch(), reduction="sum")


@pytest.mark.filterwarnings("ignore:Mismatch dtype")  # CPU autocast leaves norm gains in fp32
def test_logits_stay_float32_under_bf16_autocast():
    model = GPT(tiny())
    idx, targets = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, targets)
    assert logits.dtype == torch.float32 and torch.isfinite(loss)


def test_only_parameters_are_saved_the_position_tables_are_rebuilt():
    for pos, buffer in (("rope", "rope_cos"), ("alibi", "alibi")):
        model = GPT(tiny(pos_encoding=pos))
        assert buffer in dict(model.named_buffers())
        assert buffer not in model.state_dict()
        GPT(tiny(pos_encoding=pos)).load_state_dict(model.state_dict())  # strict round trip


# --------------------------------------------------------------------------- hand-written gradients
def test_relu_squared_gradient_is_exact():
    from autoresearch.model.gpt import ReLUSquared

    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ReLUSquared.apply, (x,))
    torch.testing.assert_close(ReLUSquared.apply(x), torch.relu(x) ** 2)


def test_rotary_gradient_is_exact_through_the_complex_multiply():
    cos, sin = rotary_tables(4, 6, 100.0)
    x = torch.randn(2, 4, 3, 6, dtype=torch.float64, requires_grad=True)
    rotate = lambda t: apply_rotary(t, cos[:, None, :].double(), sin[:, None, :].double())  # noqa: E731
    assert torch.autograd.gradcheck(rotate, (x,))


# --------------------------------------------------------------------------- positions
def test_rotary_scores_depend_only_on_relative_position():
    cos, sin = rotary_tables(32, 8, 10000.0)
    cos, sin = cos[:, None, :], sin[:, None, :]  # (T, 1, D/2)
    q, k = torch.randn(1, 1, 1, 8).expand(1, 32, 1, 8), torch.randn(1, 1, 1, 8).expand(1, 32, 1, 8)
    rq, rk = apply_rotary(q, cos, sin)[0, :, 0], apply_rotary(k, cos, sin)[0, :, 0]  # (T, D)
    torch.testing.assert_close(rq[5] @ rk[2], rq[20] @ rk[17])  # offset 3 at two places
    assert not torch.allclose(rq[5] @ rk[2], rq[5] @ rk[4])  # a different offset scores differently
    torch.testing.assert_close(rq.norm(dim=-1), q[0, :, 0].norm(dim=-1))  # a rotation


def test_rotary_compiled_form_equals_the_eager_complex_form(monkeypatch):
    cos, sin = rotary_tables(16, 8, 500.0)
    cos, sin = cos[:, None, :], sin[:, None, :]
    x = torch.randn(2, 16, 3, 8)
    eager = apply_rotary(x, cos, sin)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.testing.assert_close(apply_rotary(x, cos, sin), eager)
    assert not torch.allclose(eager, x)


def test_alibi_slopes_follow_the_paper_for_powers_of_two_and_others():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    # 6 heads: the 4-head sequence, then every other slope of the 8-head sequence
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]))


def test_rope_base_changes_the_model_and_none_has_no_position_signal():
    idx, _ = batch()
    outs = []
    for base in (10000.0, 10.0):
        torch.manual_seed(0)
        outs.append(GPT(tiny(rope_base=base))(idx)[0])
    assert not torch.allclose(outs[0], outs[1])
    # NoPE: the first token's logits are the same wherever it starts, so positions are unseen
    torch.manual_seed(0)
    nope = GPT(tiny(pos_encoding="none"))
    a, _ = nope(idx[:, 3:])
    b, _ = nope(idx[:, 3:4])
    torch.testing.assert_close(a[:, 0], b[:, 0])


# --------------------------------------------------------------------------- optimiser groups
@pytest.mark.parametrize("tied", [False, True])
def test_param_groups_cover_every_parameter_once_and_decay_only_matrices(tied):
    model = GPT(tiny(tie_embeddings=tied, pos_encoding="learned", norm="layer", bias=True))
    groups = model.param_groups(weight_decay=0.1, lr=1e-3, embedding_lr=5e-3)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"matrices", "embeddings", "gains_biases"} | (set() if tied else {"lm_head"})
    assert all(p.dim() == 2 for p in by_name["matrices"]["params"]) and by_name["matrices"]["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in by_name["gains_biases"]["params"]) and by_name["gains_biases"]["weight_decay"] == 0
    assert {id(p) for p in by_name["embeddings"]["params"]} == {id(model.wte.weight), id(model.wpe.weight)}
    assert by_name["embeddings"]["lr"] == 5e-3 and by_name["embeddings"]["weight_decay"] == 0
    assert all(g["lr"] == 1e-3 for g in groups if g["name"] != "embeddings")
    torch.optim.AdamW(groups)  # accepted as is


def test_embedding_lr_of_zero_means_the_base_lr():
    groups = GPT(tiny()).param_groups(weight_decay=0.0, lr=2e-3)
    assert {g["lr"] for g in groups} == {2e-3}


# --------------------------------------------------------------------------- run-time knobs
def test_set_dropout_changes_training_behaviour_at_run_time():
    model = GPT(tiny()).train()
    idx, _ = batch()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])  # dropout 0: deterministic
    model.set_dropout(0.3)
    assert model.cfg.dropout == 0.3 and model.blocks[0].attn.dropout == 0.3
    assert not torch.allclose(model(idx)[0], model(idx)[0])  # now stochastic
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])  # but never in eval mode
    with pytest.raises(ValueError, match="dropout"):
        model.set_dropout(1.0)


def test_set_dropout_leaves_the_callers_config_alone():
    cfg = tiny()
    GPT(cfg).set_dropout(0.2)
    assert cfg.dropout == 0.0


@pytest.mark.parametrize("pos", ["rope", "alibi"])
def test_activation_checkpointing_gives_the_same_gradients(pos):
    cfg = tiny(pos_encoding=pos, dropout=0.1)  # dropout too: recomputation must replay its masks
    idx, targets = batch()
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = GPT(cfg).train()
        model.activation_checkpointing = recompute
        model(idx, targets)[1].backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_activation_checkpointing_defaults_off():
    assert GPT(tiny()).activation_checkpointing is False


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_model_and_loss_other_seed_differs():
    idx, targets = batch()
    losses, weights = [], []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        model = GPT(tiny(dropout=0.1))
        losses.append(model(idx, targets)[1].item())
        weights.append(model.blocks[1].mlp.c_fc.weight.clone())
    assert losses[0] == losses[1] and torch.equal(weights[0], weights[1])
    assert losses[0] != losses[2] and not torch.equal(weights[0], weights[2])


def test_init_scales_residual_projections_by_depth():
    torch.manual_seed(0)
    model = GPT(tiny(n_layer=8, n_embd=128, init_std=0.05))
    std = model.blocks[0].mlp.c_fc.weight.std().item()
    proj = model.blocks[0].mlp.c_proj.weight.std().item()
    assert std == pytest.approx(0.05, rel=0.05)
    assert proj == pytest.approx(0.05 / math.sqrt(16), rel=0.05)


# --------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(("overrides", "key"), [
    ({"vocab_size": 0}, "model.vocab_size"),
    ({"n_embd": 30}, "model.n_embd"),  # not divisible by n_head=4
    ({"n_kv_head": 3}, "model.n_kv_head"),
    ({"pos_encoding": "sinusoidal"}, "model.pos_encoding"),
    ({"norm": "batch"}, "model.norm"),
    ({"activation": "tanh"}, "model.activation"),
    ({"n_embd": 12, "n_head": 4}, "rope needs an even head dimension"),
    ({"dropout": 1.0}, "model.dropout"),
])
def test_bad_configs_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        GPT(tiny(**overrides))


def test_every_problem_is_reported_at_once_as_a_config_error():
    with pytest.raises(ConfigError) as err:
        GPT(tiny(vocab_size=0, norm="batch", activation="tanh"))
    assert [p.key for p in err.value.problems] == ["model.norm", "model.activation", "model.vocab_size"]
