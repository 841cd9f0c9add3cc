"""Tokenizers: raw UTF-8 bytes, or byte-level BPE trained on the train split only.

Both share one small interface (``Tokenizer``) and both are lossless: ``decode(encode(s)) == s``.
Each also knows how many UTF-8 bytes every token stands for (``token_byte_lengths``), which is
what lets the trainer report bits per *byte* — a number comparable across tokenizers — as
``sum(nll) / (ln 2 * sum(token_byte_lengths[targets]))``. For that to be honest no token may
decode to zero bytes, so neither tokenizer has special tokens: documents are separated by text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Tokenizer(Protocol):
    name: str
    vocab_size: int
    token_byte_lengths: np.ndarray  # int64, (vocab_size,): UTF-8 bytes each token decodes to

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """Token = one UTF-8 byte. Needs no training and no file."""

    name = "byte"
    vocab_size = 256

    def __init__(self) -> None:
        self.token_byte_lengths = np.ones(256, dtype=np.int64)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        """Fast path for preparation: the bytes as one array, no Python list."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def describe(self) -> dict:
        return {"kind": "byte", "vocab_size": 256}


class BpeTokenizer:
    """Byte-level BPE (GPT-2 style pre-tokenization) from the ``tokenizers`` package.

    Every token is a sequence of bytes drawn from the 256-symbol byte alphabet, so any text
    encodes without unknown tokens, and a token's byte length is its length in that alphabet.
    """

    name = "bpe"

    def __init__(self, tok) -> None:  # tok: tokenizers.Tokenizer
        from tokenizers import pre_tokenizers

        self._tok = tok
        self.vocab_size = tok.get_vocab_size()
        alphabet = set(pre_tokenizers.ByteLevel.alphabet())
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token, idx in tok.get_vocab().items():
            if not set(token) <= alphabet:
                raise ValueError(f"token {token!r} is not byte-level: the tokenizer file is not one we wrote")
            lengths[idx] = len(token)
        if (lengths <= 0).any():
            raise ValueError("a token decodes to zero bytes: bits per byte would be wrong")
        self.token_byte_lengths = lengths

    @classmethod
    def train(cls, texts: Iterator[str], vocab_size: int) -> "BpeTokenizer":
        """Train on ``texts`` (the caller passes the train split only). The trainer is
        deterministic: merges go to the most frequent pair, ties broken by the pair itself."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,  # a pair seen once is memorisation, not structure
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: Path) -> "BpeTokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_file(str(path)))

    def save(self, path: Path) -> None:
        self._tok.save(str(path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Several texts at once, in parallel threads; skips the character offsets we never use."""
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # tokenizers >= 0.20
        return [e.ids for e in encode(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids])

    def describe(self) -> dict:
        from importlib.metadata import version

        return {"kind": "bpe", "vocab_size": self.vocab_size, "tokenizers_version": version("tokenizers")}
