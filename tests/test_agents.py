"""Agents on the shipped search spaces: playbook, random, hybrid interleave, make_agent checks.

The bayes agent (Ax) has its own module (test_agents_bayes.py), the llm agent talks to a real
HTTP server on loopback (test_agents_llm.py).
"""

from __future__ import annotations

import dataclasses
import random
import pytest

from autoresearch.agents import (
    AgentContext,
    HybridAgent,
    Playbook,
    PlaybookAgent,
    TrialRecord,
    make_agent,
    partner_kind,
)
from autoresearch.agents.base import history_seen
from autoresearch.agents.playbook import SHIPPED_PLAYBOOK, neighbour_value
from autoresearch.config import CONF_DIR, ConfigError, compose, flatten, to_dict, to_experiment_config
from autoresearch.config.schema import AgentConfig, PlaybookAgentConfig
from autoresearch.search import Hypothesis, SearchSpace, validate_hypothesis

SPACES = ["quickstart", "rope_ablation", "arch_basics", "lr_schedule"]


@pytest.fixture(scope="module")
def base() -> dict:
    return flatten(to_dict(to_experiment_config(compose([]))))


def ctx_for(space, base, history=(), incumbent=None, **kw) -> AgentContext:
    return AgentContext(space=space, base=base, history=list(history), incumbent=incumbent,
                        baseline_bpb=kw.pop("baseline_bpb", 2.5), noise_std=0.01, remaining_trials=10, **kw)


def run_agent(agent, space, base, n, value=lambda i, h: 2.5 - 0.01 * i, kept=lambda i: False):
    """Propose n times, feeding every hypothesis back as a finished trial; returns the hypotheses."""
    history: list[TrialRecord] = []
    out: list[Hypothesis] = []
    for i in range(n):
        proposal = agent.propose(ctx_for(space, base, history))
        h = proposal.hypothesis
        assert h is not None, proposal.refusals
        out.append(h)
        record = TrialRecord(trial_id=i, overrides=h.overrides, status="completed", val_bpb=value(i, h),
                             agent=h.agent, rationale=h.rationale, kept=kept(i))
        history.append(record)
        agent.observe(record)
    return out


def test_statuses_match_the_experiment_package():
    from autoresearch.agents import base as agents_base
    from autoresearch import result

    for name in ("COMPLETED", "EARLY_STOPPED", "DIVERGED", "CRASHED", "TIMEOUT", "REFUSED"):
        assert getattr(agents_base, name) == getattr(result, name)


# ------------------------------------------------------------------------------ playbook file
def test_shipped_playbook_is_valid_and_broad():
    book = Playbook.load("")
    assert book.path == str(SHIPPED_PLAYBOOK)
    assert 15 <= len(book.ideas) <= 30
    keys = {k for idea in book.ideas for k in idea.overrides}
    for key in ("model.rope_base", "model.qk_norm", "model.activation", "model.tie_embeddings", "optim.warmup_fraction",
                "optim.schedule", "optim.lr", "model.n_kv_head", "model.norm", "model.n_layer", "optim.weight_decay",
                "optim.beta2"):
        assert key in keys, key
    assert all(idea.rationale and idea.expected_effect and idea.tags for idea in book.ideas)


def test_every_playbook_key_is_a_config_key(base):
    for idea in Playbook.load("").ideas:
        for key, spec in idea.overrides.items():
            assert key in base, (idea.id, key)
            if isinstance(spec, dict) and "from" in spec:
                assert spec["from"] in base, (idea.id, spec)


def test_user_playbook_errors_name_file_idea_and_key(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text(
        "ideas:\n"
        "  - id: ok_one\n    title: fine\n    overrides: {optim.lr: 0.01}\n    rationale: r\n    expected_effect: e\n    tags: []\n"
        "  - id: Bad-Id\n    title: t\n    overrides: {optim.lr: {times: -2}}\n    rationale: r\n    expected_effect: e\n    tags: []\n"
        "  - id: no_overrides\n    title: t\n    overrides: {}\n    rationale: r\n    expected_effect: e\n    tags: []\n"
        "  - id: bad_value\n    title: t\n    overrides: {optim.lr: [1, 2]}\n    rationale: r\n    expected_effect: e\n    tags: []\n"
    )
    with pytest.raises(ConfigError) as err:
        Playbook.load(bad)
    text = str(err.value)
    assert str(bad) in text
    assert "ideas[1](Bad-Id).id" in text
    assert "ideas[1](Bad-Id).overrides.optim.lr" in text
    assert "ideas[2](no_overrides).overrides" in text
    assert "ideas[3](bad_value).overrides.optim.lr" in text
    assert len(err.value.problems) >= 4


def test_user_playbook_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="agent.playbook.path.*no playbook file"):
        Playbook.load(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("ideas: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Playbook.load(broken)
    dup = tmp_path / "dup.yaml"
    one = "  - id: same\n    title: t\n    overrides: {optim.lr: 0.01}\n    rationale: r\n    expected_effect: e\n    tags: []\n"
    dup.write_text("ideas:\n" + one + one)
    with pytest.raises(ConfigError, match=r"ideas\[1\].id: duplicate id 'same'"):
        Playbook.load(dup)


def test_user_playbook_is_data_only(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("ideas: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Playbook.load(evil)


# ------------------------------------------------------------------------------ playbook agent
@pytest.mark.parametrize("space_name", SPACES)
def test_playbook_proposes_valid_untried_hypotheses(space_name, base):
    space = SearchSpace.load(space_name)
    agent = make_agent(AgentConfig(kind="playbook"), space, base)
    hyps = run_agent(agent, space, base, 8)
    seen = set()
    for h in hyps:
        again = validate_hypothesis(h.to_dict(), space=space, base=base, agent="check")
        assert isinstance(again, Hypothesis), again
        assert h.agent == "playbook" and h.rationale and h.expected_effect
        key = tuple(sorted(h.overrides.items()))
        assert key not in seen
        seen.add(key)


def test_playbook_skips_ideas_outside_the_space_and_no_ops(base):
    space = SearchSpace.load("rope_ablation")  # pos_encoding, rope_base, lr
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    hyps = run_agent(agent, space, base, 5, kept=lambda i: True)
    ideas = [h.rationale.split(":")[0] for h in hyps]
    # base already uses rope → "rope_over_learned" would change nothing; qk_norm etc. are not in the space
    assert "playbook idea rope_over_learned" not in ideas
    assert all(set(h.overrides) <= set(space.parameters) for h in hyps)
    # the learning-rate ideas come first; then a kept RoPE-base change ranks the other RoPE-base idea next
    hyps = run_agent(PlaybookAgent.from_config(PlaybookAgentConfig()), space, base, 8, kept=lambda i: True)
    ideas = [h.rationale.split(":")[0] for h in hyps]
    assert ideas[0] == "playbook idea lr_x3"
    i = ideas.index("playbook idea rope_base_large")
    assert ideas[i + 1] == "playbook idea rope_base_small", ideas
    discarded = PlaybookAgent.from_config(PlaybookAgentConfig())
    ideas = [h.rationale.split(":")[0] for h in run_agent(discarded, space, base, 3, kept=lambda i: False)]
    i = ideas.index("playbook idea rope_base_large")
    assert ideas[i + 1] != "playbook idea rope_base_small"  # … a discarded one ranks it down


def test_playbook_builds_on_the_incumbent_and_sets_parent(base):
    space = SearchSpace.load("quickstart")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    incumbent = TrialRecord(trial_id=7, overrides={"optim.lr": 0.004}, status="completed", val_bpb=2.4, kept=True)
    h = agent.propose(ctx_for(space, base, [incumbent], incumbent=incumbent)).hypothesis
    assert h is not None and h.parent == 7
    # the kept lr change ranks the coarse lr ideas first; ×3 passes the range's top (0.01), so it probes
    # the top, ×10 would too (a repeat: skipped), then ÷3 of the incumbent's value; the ×2 / ÷2
    # refinements wait for the other keys
    assert h.rationale.startswith("playbook idea lr_x3") and h.overrides == {"optim.lr": 0.01}
    history = [incumbent, TrialRecord(trial_id=8, overrides=h.overrides, status="completed", val_bpb=2.45,
                                      rationale=h.rationale)]
    h = agent.propose(ctx_for(space, base, history, incumbent=incumbent)).hypothesis
    assert h.overrides == {"optim.lr": 0.00133333}, h
    history.append(TrialRecord(trial_id=10, overrides=h.overrides, status="completed", val_bpb=2.45, rationale=h.rationale))
    ctx = ctx_for(space, base, history, incumbent=incumbent)
    h3 = agent.propose(ctx).hypothesis
    assert h3.overrides["optim.lr"] == 0.004 and len(h3.overrides) == 2  # other ideas keep the incumbent's lr


def test_playbook_sweeps_the_learning_rate_first_on_a_log_scale(base):
    """lr searchable: ×3, then ×10 on the kept incumbent, then ÷3 — a decade-wide search before any other idea."""
    space = SearchSpace.load("quickstart")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    b = {**base, "optim.lr": 3e-4}
    history: list[TrialRecord] = []
    incumbent = None
    lrs = []
    for i, value in enumerate((2.0, 1.5, 1.8)):  # ×3 kept, ×10 kept, ÷3 discarded
        h = agent.propose(ctx_for(space, b, history, incumbent=incumbent)).hypothesis
        assert h.rationale.startswith("playbook idea lr_"), h.rationale
        assert set(h.overrides) == {"optim.lr"}
        lrs.append(h.overrides["optim.lr"])
        rec = TrialRecord(trial_id=i, overrides=h.overrides, status="completed", val_bpb=value, agent=h.agent,
                          rationale=h.rationale, kept=value < (incumbent.val_bpb if incumbent else 2.5))
        history.append(rec)
        incumbent = rec if rec.kept else incumbent
    assert lrs == [9e-4, 9e-3, 3e-3]  # rounded to 6 significant digits, no 0.0029999…
    # without lr in the space the architecture ideas lead
    arch = SearchSpace.load("arch_basics")
    assert "optim.lr" not in arch.parameters
    first = PlaybookAgent.from_config(PlaybookAgentConfig()).propose(ctx_for(arch, base)).hypothesis
    assert not first.rationale.startswith("playbook idea lr_") and "optim.lr" not in first.overrides


def test_playbook_refines_the_learning_rate_only_after_a_first_look_at_every_other_key(base):
    """Kept lr steps must not pull the ×2 / ÷2 refinements ahead of the architecture ideas.

    Without the coarse-before-fine rule the two kept lr steps rank ``higher_lr`` and ``lower_lr``
    first (their keys match kept trials), and the search tunes the rate before it has looked at
    any other key.
    """
    space = SearchSpace.load("quickstart")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    # the quickstart's plain GPT-2 baseline, so every architecture idea changes something
    b = {**base, "optim.lr": 3e-4, "model.pos_encoding": "learned", "model.norm": "layer",
         "model.activation": "gelu", "model.qk_norm": False}
    history: list[TrialRecord] = []
    incumbent = None
    ideas = []
    for i in range(12):
        h = agent.propose(ctx_for(space, b, history, incumbent=incumbent)).hypothesis
        ideas.append(h.rationale.split(":")[0].removeprefix("playbook idea "))
        value = (2.0, 1.5)[i] if i < 2 else 1.6  # ×3 and ×10 kept, everything after discarded
        rec = TrialRecord(trial_id=i, overrides=h.overrides, status="completed", val_bpb=value, agent=h.agent,
                          rationale=h.rationale, kept=value < (incumbent.val_bpb if incumbent else 2.5))
        history.append(rec)
        incumbent = rec if rec.kept else incumbent
    assert ideas[:3] == ["lr_x3", "lr_x10", "lr_div3"]  # the coarse log-scale sweep still leads
    first_fine = min(ideas.index("higher_lr"), ideas.index("lower_lr"))
    looked_at = {k for rec in history[:first_fine] for k in rec.overrides}
    assert looked_at == set(space.parameters), ideas  # every key had its first look before any refinement
    assert set(ideas[first_fine:first_fine + 2]) == {"higher_lr", "lower_lr"}, ideas
    # the same playbook with the flags removed tunes the rate first, as before the rule
    plain = PlaybookAgent(playbook=dataclasses.replace(
        agent.playbook, ideas=tuple(dataclasses.replace(i, refinement=False) for i in agent.playbook.ideas)))
    order = [idea for idea, _ in plain.rank(ctx_for(space, b, history[:2], incumbent=history[1]))]
    assert max(order.index("higher_lr"), order.index("lower_lr")) < order.index("rope_over_learned"), order


def test_playbook_inactive_incumbent_keys_are_dropped(base):
    space = SearchSpace.load("rope_ablation")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    incumbent = TrialRecord(trial_id=3, overrides={"model.rope_base": 50000.0}, status="completed", val_bpb=2.4, kept=True)
    ctx = ctx_for(space, base, [incumbent], incumbent=incumbent)
    hyps = []
    for _ in range(8):  # the learning-rate ideas come first
        h = agent.propose(ctx).hypothesis
        hyps.append(h)
    alibi = [h for h in hyps if h.overrides.get("model.pos_encoding") == "alibi"]
    assert alibi and "model.rope_base" not in alibi[0].overrides


def test_playbook_ranks_by_what_the_store_knows(base):
    space = SearchSpace.load("arch_basics")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig())
    plain = [i for i, _ in agent.rank(ctx_for(space, base))]
    history = [
        # a kept change of the activation ranks activation ideas up …
        TrialRecord(trial_id=1, overrides={"model.activation": "gelu"}, status="completed", val_bpb=2.40, kept=True),
        # … a discarded depth change ranks the shape ideas down
        TrialRecord(trial_id=2, overrides={"model.n_layer": 8}, status="completed", val_bpb=2.60, kept=False),
        TrialRecord(trial_id=3, overrides={"model.n_layer": 2}, status="crashed"),
    ]
    informed = [i for i, _ in agent.rank(ctx_for(space, base, history))]
    assert informed.index("swiglu") < plain.index("swiglu")
    assert informed.index("swiglu") == 0 or informed[0] == "relu_squared"
    assert informed.index("deeper_narrower") > plain.index("deeper_narrower")
    # memory lines move ideas too
    lines = ["Tie them. overrides: model.tie_embeddings=true. outcome: val_bpb 2.6100 (Δ +0.1100 vs baseline), discarded"]
    with_memory = [i for i, _ in agent.rank(ctx_for(space, base, neighbours=lines))]
    assert with_memory.index("tied_head") > plain.index("tied_head")
    good = ["overrides: model.norm=layer. outcome: val_bpb 2.3000 (Δ -0.2000 vs baseline), kept"]
    assert [i for i, _ in agent.rank(ctx_for(space, base, neighbours=good))][0] == "rms_norm"


def test_playbook_mutates_the_incumbent_when_exhausted(base):
    space = SearchSpace.load("quickstart")
    agent = PlaybookAgent.from_config(PlaybookAgentConfig(), seed=3)
    hyps = run_agent(agent, space, base, 12)
    mutations = [h for h in hyps if h.rationale.startswith("Playbook exhausted")]
    assert mutations, [h.rationale for h in hyps]
    for h in mutations:
        assert "moving" in h.rationale and "neighbouring value" in h.rationale


def test_playbook_remembers_its_ideas_after_resume(base):
    space = SearchSpace.load("rope_ablation")
    first = make_agent(AgentConfig(kind="playbook"), space, base)
    hyps = run_agent(first, space, base, 3)
    history = [TrialRecord(trial_id=i, overrides=h.overrides, status="completed", val_bpb=2.5, agent=h.agent,
                           rationale=h.rationale) for i, h in enumerate(hyps)]
    resumed = make_agent(AgentConfig(kind="playbook"), space, base, history=history)
    nxt = resumed.propose(ctx_for(space, base, history)).hypothesis
    assert nxt.rationale.split(":")[0] not in {h.rationale.split(":")[0] for h in hyps}


def test_neighbour_value_stays_in_the_domain():
    space = SearchSpace.load("arch_basics")
    rng = random.Random(0)
    for key, p in space.parameters.items():
        if p.type == "fixed":
            continue
        current = p.values[0] if p.type == "choice" else p.bounds[0]
        for _ in range(20):
            v = neighbour_value(p, current, rng)
            assert v is None or p.check(p.cast(v)) is None, (key, v)


# ------------------------------------------------------------------------------ random
@pytest.mark.parametrize("space_name", SPACES)
def test_random_agent_proposes_valid_points(space_name, base):
    space = SearchSpace.load(space_name)
    agent = make_agent(AgentConfig(kind="random"), space, base, seed=1)
    hyps = run_agent(agent, space, base, 5)
    assert all(h.agent == "random" for h in hyps)
    assert len({tuple(sorted(h.overrides.items())) for h in hyps}) == 5


def test_history_seen_finds_repeats(base):
    space = SearchSpace.load("quickstart")
    history = [TrialRecord(trial_id=4, overrides={"optim.lr": 0.01}, status="completed", val_bpb=2.4)]
    seen = history_seen(ctx_for(space, base, history))
    refused = validate_hypothesis({"overrides": {"optim.lr": 0.01}, "rationale": "r", "expected_effect": "e"},
                                  space=space, base=base, agent="t", seen=seen)
    assert refused.code == "duplicate" and "trial 4" in refused.reason


# ------------------------------------------------------------------------------ hybrid + factory
def test_hybrid_interleave_respects_the_share():
    for share, n in ((0.3, 10), (0.25, 8), (0.5, 6), (0.0, 5), (1.0, 4)):
        h = HybridAgent(lead=None, partner=None, share=share)  # type: ignore[arg-type]
        turns = [h.partner_turn(i) for i in range(n)]
        assert sum(turns) == int(round(share * n)), (share, turns)


class _Stub:
    """An agent that always proposes."""

    def __init__(self, name: str):
        self.name, self.n = name, 0

    def propose(self, ctx):
        from autoresearch.search import Proposal

        self.n += 1
        return Proposal(hypothesis=Hypothesis(overrides={"optim.lr": 1e-3 * self.n}, agent=self.name))

    def observe(self, record):
        pass


def test_hybrid_interleaves_from_the_first_slot(base):
    """Ax's own first slots stay its Sobol points: the partner gets its share, never the whole start."""
    h = HybridAgent(lead=_Stub("bayes"), partner=_Stub("playbook"), share=0.3)
    ctx = ctx_for(SearchSpace.load("quickstart"), base)
    who = [h.propose(ctx).hypothesis.agent for _ in range(10)]
    assert who == ["playbook" if h.partner_turn(i) else "bayes" for i in range(10)]
    assert who.count("playbook") == 3 and who[0] == "bayes"
    alone = HybridAgent(lead=_Stub("bayes"), partner=_Stub("playbook"), share=0.0)
    assert [alone.propose(ctx).hypothesis.agent for _ in range(3)] == ["bayes"] * 3  # share 0 = Ax alone


def test_hybrid_with_playbook_partner(base):
    space = SearchSpace.load("quickstart")
    cfg = AgentConfig(kind="hybrid", partner_kind="playbook", partner_share=0.5)
    cfg.bayes.sobol_trials = 3
    agent = make_agent(cfg, space, base)
    hyps = run_agent(agent, space, base, 6)
    who = [h.agent for h in hyps]
    assert who == ["playbook" if agent.partner_turn(i) else "bayes" for i in range(6)], who
    assert hyps[1].rationale.startswith("playbook idea lr_x3")  # the partner's first slot: its best idea
    assert "Sobol" in hyps[0].rationale and "BoTorch" in hyps[4].rationale  # Ax's own start, then its model
    assert agent.lead.ax_trials and len(agent.lead.ax_trials) == 7  # 6 trials + the baseline
    assert agent.fallback_reason is None


def test_partner_auto_follows_the_api_key(monkeypatch):
    cfg = AgentConfig(kind="hybrid", partner_kind="auto")
    cfg.llm.api_key_env = "AUTORESEARCH_TEST_KEY"
    monkeypatch.delenv("AUTORESEARCH_TEST_KEY", raising=False)
    assert partner_kind(cfg) == "playbook"
    monkeypatch.setenv("AUTORESEARCH_TEST_KEY", "sk-test")
    assert partner_kind(cfg) == "llm"
    cfg.partner_kind = "playbook"
    assert partner_kind(cfg) == "playbook"


def test_make_agent_reports_every_bad_value(base):
    space = SearchSpace.load("quickstart")
    cfg = AgentConfig(kind="hybrid", partner_share=1.5)
    cfg.llm.max_consecutive_failures = 0
    cfg.llm.api_key_env = "sk-live-0123456789"
    cfg.bayes.sobol_trials = -1
    with pytest.raises(ConfigError) as err:
        make_agent(cfg, space, base)
    text = str(err.value)
    for key in ("agent.partner_share", "agent.llm.max_consecutive_failures", "agent.llm.api_key_env", "agent.bayes.sobol_trials"):
        assert key in text
    with pytest.raises(ConfigError, match="agent.kind"):
        make_agent(AgentConfig(kind="oracle"), space, base)


def test_shipped_agent_configs_build(base):
    """Every conf/agent/*.yaml composes and builds an agent over a shipped space (no network)."""
    space = SearchSpace.load("quickstart")
    names = sorted(p.stem for p in (CONF_DIR / "agent").glob("*.yaml"))
    assert {"bayes", "hybrid", "llm", "playbook", "random"} <= set(names)
    for name in ("playbook", "random", "llm"):
        cfg = to_experiment_config(compose([f"agent={name}"])).agent
        agent = make_agent(cfg, space, base)
        assert agent.name == name
