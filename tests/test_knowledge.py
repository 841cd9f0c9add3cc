"""Semantic memory, duplicates across campaigns, literature grounding and the store's search command.

These use the hashing embedder (fast, deterministic); tests/test_knowledge_minilm.py runs the real
sentence model.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from autoresearch.config import ExperimentConfig, flatten, to_dict
from autoresearch.knowledge import (
    KNOWN_NEGATIVE,
    REPLICATION,
    HashingEmbedder,
    LiteLLMEmbedder,
    Literature,
    LiteratureError,
    Memory,
    describe,
    make_embedder,
)
from autoresearch.search.hypothesis import Hypothesis, config_fingerprint
from autoresearch.knowledge.cli import main as knowledge_cli



@pytest.fixture(scope="module")
def embedder():
    return HashingEmbedder()


def _fingerprint(**overrides) -> str:
    flat = flatten(to_dict(ExperimentConfig()))
    flat.update(overrides)
    return config_fingerprint(flat)


def _run(store, campaign: str, h: Hypothesis | None, *, val_bpb: float, kind="hypothesis", status="completed", decision=None, fp=None):
    """Record one finished trial the way a campaign does: hypothesis, trial, finish, decision."""
    cid = store.upsert_campaign(campaign, {"campaign": {"name": campaign}}, "space.yaml", f"outputs/campaigns/{campaign}")
    overrides = dict(h.overrides) if h else {}
    hid = store.add_hypothesis(cid, h.to_dict(), status="proposed") if h else None
    tid = store.add_trial(
        cid, hid, kind=kind, seed=1337, overrides=overrides, config={}, fingerprint=fp or _fingerprint(**overrides),
        run_dir=f"outputs/campaigns/{campaign}/trials/{len(store.trials()) + 1:04d}",
    )
    store.finish_trial(tid, status, {"val_bpb": val_bpb if status == "completed" else math.nan})
    if decision:
        store.set_trial_decision(tid, decision)
    return tid


ROPE = Hypothesis(overrides={"model.rope_base": 100000.0}, rationale="A larger rotary base slows the rotation of low-frequency channels", agent="playbook")
SWIGLU = Hypothesis(overrides={"model.activation": "swiglu"}, rationale="Gated MLP units train better", agent="llm")
LR = Hypothesis(overrides={"optim.lr": 0.01}, rationale="A higher learning rate learns more in a short budget", agent="bayes")


def test_embedders_return_unit_float32_rows(embedder):
    vectors = embedder.embed(["rope base 100000", "rope base 100000", "dropout 0.1", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (4, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[1]) and not vectors[3].any()
    assert vectors[0] @ embedder.embed(["larger rope base"])[0] > vectors[0] @ vectors[2]
    assert make_embedder("hashing").name == embedder.name
    with pytest.raises(ValueError, match="must be one of"):
        make_embedder("word2vec")


def test_describe_has_rationale_sorted_overrides_and_outcome():
    h = {"overrides": {"optim.lr": 0.01, "model.rope_base": 1e5}, "rationale": "Larger base.", "expected_effect": "lower val_bpb"}
    text = describe(h, {"status": "completed", "val_bpb": 2.51, "baseline_bpb": 2.55, "decision": "keep"})
    assert text == (
        "Larger base. expected: lower val_bpb. overrides: model.rope_base=100000, optim.lr=0.01. "
        "outcome: val_bpb 2.5100 (Δ -0.0400 vs baseline), kept"
    )
    assert describe({"overrides": {}}, {"status": "crashed", "val_bpb": math.nan, "error": "Traceback\nRuntimeError: OOM"}) == (
        "overrides: no overrides (baseline config). outcome: crashed (RuntimeError: OOM)"
    )


def test_nearest_finds_related_trials_across_campaigns(store, embedder):
    _run(store, "first", None, kind="baseline", val_bpb=2.55, decision="keep")
    rope = _run(store, "first", ROPE, val_bpb=2.51, decision="keep")
    _run(store, "second", SWIGLU, val_bpb=2.49, decision="keep")
    _run(store, "second", LR, val_bpb=2.60, decision="discard")
    memory = Memory(store, embedder)

    hits = memory.nearest("rotary base", k=2)
    assert hits[0].trial_id == rope and hits[0].campaign == "first" and hits[0].val_bpb == 2.51
    assert hits[0].run_dir.endswith("trials/0002") and "Δ -0.0400 vs baseline" in hits[0].text and "kept" in hits[0].text
    assert [n.campaign for n in memory.nearest(Hypothesis(overrides={"model.activation": "gelu"}, rationale="gated mlp"), k=1)] == ["second"]
    assert all(n.campaign == "second" for n in memory.nearest("rotary base", k=5, campaign_id=store.campaign("second").id))
    assert "t0002 [first] model.rope_base=100000 → val_bpb 2.5100, keep" in hits[0].summary()


def test_memory_follows_later_decisions_and_findings(store, embedder):
    tid = _run(store, "c", ROPE, val_bpb=2.51)
    memory = Memory(store, embedder)
    assert "kept" not in memory.nearest("rotary", k=1)[0].text
    store.set_trial_decision(tid, "keep")
    hid = store.trial(tid).hypothesis_id
    store.add_finding(store.campaign("c").id, hid, status="validated", effect=-0.03, ci_low=-0.05, ci_high=-0.01, p_value=0.01, q_value=0.02, n=3)
    text = memory.nearest("rotary", k=1)[0].text
    assert "kept" in text and "validated (effect -0.0300, 95% CI [-0.0500, -0.0100])" in text
    ids, texts, _ = store.embeddings("trial", embedder.name)
    assert ids == [tid] and texts == [text]  # re-embedded in place, not duplicated


def test_duplicate_of_a_trial_from_an_earlier_campaign_is_found(store, embedder):
    earlier = _run(store, "rope_ablation", ROPE, val_bpb=2.51, decision="keep")
    memory = Memory(store, embedder)

    # A later campaign proposes the same change: same resolved config → duplicate, with a pointer.
    again = Hypothesis(overrides={"model.rope_base": 1e5}, rationale="try a bigger rope theta", agent="llm")
    dup = memory.find_duplicate(again, _fingerprint(**{"model.rope_base": 1e5}))
    assert dup is not None and dup.trial_id == earlier and dup.campaign == "rope_ablation" and dup.score == 1.0
    assert "same resolved config" in dup.reason and dup.run_dir.endswith("trials/0001")

    # Different base config (other fingerprint), identical overrides and the same reason → duplicate.
    same_words = Hypothesis(overrides={"model.rope_base": 100000}, rationale=ROPE.rationale, agent="llm")
    dup = memory.find_duplicate(same_words, "another-base-config")
    assert dup is not None and dup.trial_id == earlier and "identical overrides" in dup.reason

    # Identical overrides for an unrelated reason, or different overrides: not a duplicate.
    other_reason = Hypothesis(overrides={"model.rope_base": 1e5}, rationale="check whether loss spikes vanish with bf16", agent="llm")
    assert memory.find_duplicate(other_reason, "another-base-config") is None
    other_value = Hypothesis(overrides={"model.rope_base": 5e5}, rationale=ROPE.rationale, agent="llm")
    assert memory.find_duplicate(other_value, _fingerprint(**{"model.rope_base": 5e5})) is None


def test_a_running_trial_is_not_a_duplicate(store, embedder):
    cid = store.upsert_campaign("c", {}, "s", "d")
    fp = _fingerprint(**{"optim.lr": 0.01})
    store.add_trial(cid, None, kind="hypothesis", seed=1, overrides={"optim.lr": 0.01}, config={}, fingerprint=fp, run_dir="r")
    assert Memory(store, embedder).find_duplicate(LR, fp) is None


def test_literature_flags_a_known_negative_with_its_citation(store, embedder):
    literature = Literature(store, embedder)
    dropout = Hypothesis(overrides={"model.dropout": 0.1}, rationale="regularise the small model", agent="llm")
    match = literature.check(dropout)
    assert match is not None and match.status == KNOWN_NEGATIVE
    assert (match.title, match.year, match.url) == (
        "Drop Dropout on Single-Epoch Language Model Pretraining",
        2025,
        "https://arxiv.org/abs/2505.24788",
    )
    assert match.matched == {"model.dropout": 0.1} and "Liu, Bauer and Manning (2025)" in match.citation
    assert "known negative" in match.reason()

    swiglu = literature.check(SWIGLU)
    assert swiglu is not None and swiglu.status == REPLICATION and swiglu.entry.id == "shazeer2020-glu-variants"
    # Dropout switched off is what the paper recommends; and words alone never flag.
    assert literature.check(Hypothesis(overrides={"model.dropout": 0.0}, rationale="dropout hurts single-epoch pretraining")) is None
    assert literature.check(Hypothesis(overrides={"optim.lr": 0.002}, rationale="dropout hurts")) is None


def test_literature_files_are_validated_and_persist(store, embedder, tmp_path):
    bad = tmp_path / "mine.jsonl"
    bad.write_text(
        '{"id": "x", "title": "t"}\n'
        "\n"
        "not json\n"
        + json.dumps({**_record("ok"), "effect_direction": "better", "settings": {"optim.lr": {"about": 1}}})
        + "\n"
    )
    with pytest.raises(LiteratureError) as err:
        Literature(store, embedder).add_file(bad)
    message = str(err.value)
    assert f"{bad}:1: missing field 'year'" in message
    assert f"{bad}:3: not valid JSON" in message
    assert f"{bad}:4: field 'effect_direction' must be one of" in message and "unknown comparison 'about'" in message

    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_record("mine-bigbatch")) + "\n")
    assert Literature(store, embedder).add_file(good) == 1
    fresh = Literature(store, embedder)  # a new instance (another process) sees it, from the store
    match = fresh.check(Hypothesis(overrides={"trainer.batch_size": 128}, rationale="bigger batches"))
    assert match is not None and match.entry.id == "mine-bigbatch" and match.status == KNOWN_NEGATIVE


def _record(rid: str) -> dict:
    return {
        "id": rid, "title": "Big batches stall short runs", "year": 2024, "url": "https://example.org/bigbatch",
        "abstract": "Our lab notes.", "claimed_effect": "Batch sizes above 64 hurt 60-second runs.",
        "effect_direction": "negative", "tags": ["batch-size"], "keys": ["trainer.batch_size"],
        "settings": {"trainer.batch_size": {"gt": 64}},
    }


def test_cli_search_prints_outcomes_and_literature(store, embedder, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    _run(store, "rope_ablation", ROPE, val_bpb=2.51, decision="keep")
    _run(store, "arch", SWIGLU, val_bpb=2.62, decision="discard")
    db = str(store.path)

    assert knowledge_cli(["search", "rope base", "--db", db, "--k", "1", "--embedder", "hashing", "--literature"]) == 0
    out = capsys.readouterr().out
    assert "t0001" in out and "rope_ablation" in out and "2.5100" in out and "completed (keep)" in out
    assert "model.rope_base=100000" in out and "outputs/campaigns/rope_ablation/trials/0001" in out
    assert "t0002" not in out  # --k 1
    assert "known results" in out and "arxiv.org" in out

    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_record("cli-added")) + "\n")
    assert knowledge_cli(["literature", "add", str(good), "--db", db]) == 0
    assert knowledge_cli(["literature", "list", "--db", db]) == 0
    assert "cli-added" in capsys.readouterr().out

    assert knowledge_cli(["search", "x", "--db", str(tmp_path / "missing.sqlite"), "--embedder", "hashing"]) == 2
    assert "no knowledge store at" in capsys.readouterr().err


# ---------------------------------------------------------------------------- litellm, against a loopback server
class _EmbeddingServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/embeddings endpoint that embeds with a small hashing embedder."""

    seen: list = []
    model = HashingEmbedder(dim=32)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization"), body))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = self.model.embed(texts) * 3.0  # not normalised: the client must normalise
        payload = {
            "object": "list",
            "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_litellm_embedder_against_a_local_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("LOCAL_EMBED_KEY", "local-secret-12345")
        embedder = LiteLLMEmbedder(
            "openai/text-embedding-3-small", api_base=f"http://127.0.0.1:{server.server_port}/v1", api_key_env="LOCAL_EMBED_KEY"
        )
        texts = ["rope base", "dropout", "rope base"]
        vectors = embedder.embed(texts)
        assert vectors.shape == (3, 32) and embedder.dim == 32 and embedder.name == "litellm:openai/text-embedding-3-small"
        assert np.allclose(vectors, _EmbeddingServer.model.embed(texts), atol=1e-6)
        path, auth, body = _EmbeddingServer.seen[-1]
        assert path.endswith("/embeddings") and auth == "Bearer local-secret-12345" and body["input"] == texts
    finally:
        server.shutdown()
