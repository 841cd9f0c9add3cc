"""Literature files are untrusted input (issue 14 item 7), and the literature check looks at every
record, not only the best one (issue 12 item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.knowledge import KNOWN_NEGATIVE, HashingEmbedder, Literature, LiteratureError, load_jsonl
from autoresearch.knowledge.literature import MAX_DEPTH, MAX_FILE_BYTES
from autoresearch.store import KnowledgeStore

ROOT = Path(__file__).resolve().parents[1]


def _record(rid: str, **extra) -> dict:
    return {"id": rid, "title": f"Paper {rid}", "year": 2024, "url": f"https://example.org/{rid}", "abstract": "Notes.",
            "claimed_effect": "An effect.", "effect_direction": "neutral", "tags": [], "keys": [], "settings": {}, **extra}


def _add(file: Path, db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "autoresearch.knowledge", "literature", "add", str(file), "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_file_that_is_not_utf8_is_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(_record("ok")).encode() + b"\n" + json.dumps(_record("caf\u00e9"), ensure_ascii=False).encode("latin-1") + b"\n")
    result = _add(bad, tmp_path / "k.sqlite")
    assert result.returncode == 2
    assert f"{bad}:2: not UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_a_deeply_nested_line_is_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "deep.jsonl"
    bad.write_text(json.dumps(_record("ok")) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    result = _add(bad, tmp_path / "k.sqlite")
    assert result.returncode == 2
    assert f"{bad}:2: nested 100000 levels deep" in result.stderr and "Traceback" not in result.stderr


def test_nesting_inside_strings_does_not_count(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_record("brackets", abstract="[" * (MAX_DEPTH + 5) + '\\"{{{')) + "\n")
    assert [e.id for e in load_jsonl(good)] == ["brackets"]


def test_a_lone_surrogate_is_refused_naming_the_line(tmp_path):
    bad = tmp_path / "surrogate.jsonl"
    bad.write_text(json.dumps(_record("s")).replace('"Notes."', '"\\ud800"') + "\n")
    result = _add(bad, tmp_path / "k.sqlite")
    assert result.returncode == 2
    assert f"{bad}:1: holds a lone surrogate" in result.stderr and "Traceback" not in result.stderr


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no need to write 16 MiB
    with pytest.raises(LiteratureError, match=rf"{big}: literature file is {MAX_FILE_BYTES + 1} bytes"):
        load_jsonl(big)


# ------------------------------------------------------------------------------ the literature check
def test_a_known_negative_on_one_key_flags_even_when_a_neutral_record_matches_better(tmp_path):
    """Before: only the best-scoring record was kept, so a neutral record that matched the other key
    (and the rationale's words) better hid the known negative, and the hypothesis ran."""
    negative = _record("neg", effect_direction="negative", title="Dropout hurts short runs",
                       claimed_effect="Dropout above zero slows short runs.", keys=["model.dropout"],
                       settings={"model.dropout": {"gt": 0}})
    neutral = _record("neu", title="Warm-up fraction sweep", claimed_effect="A longer warm up of the learning rate.",
                      abstract="A longer warm up of the learning rate for short runs.", keys=["optim.warmup_fraction"],
                      settings={"optim.warmup_fraction": {"ge": 0.1}})
    file = tmp_path / "lit.jsonl"
    file.write_text(json.dumps(negative) + "\n" + json.dumps(neutral) + "\n")
    hypothesis = {"overrides": {"model.dropout": 0.1, "optim.warmup_fraction": 0.2},
                  "rationale": "A longer warm up of the learning rate for short runs.", "agent": "t"}
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        literature = Literature(store, HashingEmbedder(), include_shipped=False)
        literature.add_file(file)
        ranked = literature.matches(hypothesis, k=2, min_score=literature.threshold)
        assert [m.entry.id for m in ranked] == ["neu", "neg"]  # the neutral record scores higher
        match = literature.check(hypothesis)
    assert match is not None and match.status == KNOWN_NEGATIVE and match.entry.id == "neg"
    reason = match.reason()
    assert "https://example.org/neg" in reason and "https://example.org/neu" in reason  # every citation


def test_no_known_negative_means_the_best_replication(tmp_path):
    file = tmp_path / "lit.jsonl"
    file.write_text(json.dumps(_record("neu", keys=["optim.lr"], settings={"optim.lr": {"gt": 0.001}})) + "\n")
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        literature = Literature(store, HashingEmbedder(), include_shipped=False)
        literature.add_file(file)
        match = literature.check({"overrides": {"optim.lr": 0.01}, "rationale": "", "agent": "t"})
        assert match is not None and match.status != KNOWN_NEGATIVE and match.others == ()
        assert literature.check({"overrides": {"optim.lr": 0.0001}, "rationale": "", "agent": "t"}) is None
