"""Semantic memory of every experiment and the known results of the literature.

``Memory`` embeds each trial with its outcome and answers "what have we tried that is like
this?" and "has this exact experiment run before, in any campaign?". ``Literature`` matches a
hypothesis against known results (shipped ``known_results.jsonl`` plus the user's own) and says
whether it would re-test a known negative result or replicate a known positive one.
"""

from autoresearch.knowledge.embedders import (
    EMBEDDER_KINDS,
    Embedder,
    EmbedderUnavailable,
    HashingEmbedder,
    LiteLLMEmbedder,
    MiniLMEmbedder,
    cosine_top_k,
    make_embedder,
    minilm_available,
    minilm_model_path,
)
from autoresearch.knowledge.literature import (
    KNOWN_NEGATIVE,
    REPLICATION,
    SHIPPED_FILE,
    Literature,
    LiteratureEntry,
    LiteratureError,
    LiteratureMatch,
    load_jsonl,
)
from autoresearch.knowledge.memory import Memory, Neighbour, describe, format_overrides, proposal_text, same_overrides

__all__ = [
    "EMBEDDER_KINDS",
    "KNOWN_NEGATIVE",
    "REPLICATION",
    "SHIPPED_FILE",
    "Embedder",
    "EmbedderUnavailable",
    "HashingEmbedder",
    "LiteLLMEmbedder",
    "Literature",
    "LiteratureEntry",
    "LiteratureError",
    "LiteratureMatch",
    "Memory",
    "MiniLMEmbedder",
    "Neighbour",
    "cosine_top_k",
    "describe",
    "format_overrides",
    "load_jsonl",
    "make_embedder",
    "minilm_available",
    "minilm_model_path",
    "proposal_text",
    "same_overrides",
]
