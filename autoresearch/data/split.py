"""Deterministic train / val / test split by document.

A document's split is decided by a hash of ``(split_seed, document id)`` alone, so it does not
depend on the order files are listed in, and adding documents to a corpus never moves the ones
already there. Splitting by document (not by position in one long text) keeps a play's second
half out of training when its first half is scored.

Hashing gives each split its fraction only on average. When that leaves a split with nothing
(a small corpus, or bad luck), a deterministic fallback fills it, and the plan records what it
did so the manifest can say so:

* ``move_document``: the corpus has enough documents for the split to deserve one
  (``n_docs * fraction >= 1``): one whole document moves from a split that holds several,
  chosen by a second hash so the choice is as stable as the first.
* ``cut_document``: too few documents: the split gets the tail of the largest piece, about
  ``fraction`` of the corpus's characters, cut off as one contiguous chunk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

SPLITS = ("train", "val", "test")


def hash_unit(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from sha256, identical on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(doc_id: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    u = hash_unit(doc_id, seed)
    if u < val_fraction:
        return "val"
    if u < val_fraction + test_fraction:
        return "test"
    return "train"


@dataclass(frozen=True)
class Piece:
    """Characters ``[start, end)`` of a document, and the split they go to."""

    split: str
    start: int
    end: int


@dataclass(kw_only=True)
class SplitPlan:
    """Where every document (or piece of one) goes. Built from ids and lengths only, so it can be
    computed in one streaming pass before any text is tokenized."""

    pieces: dict[str, list[Piece]]  # doc id -> its pieces, in text order
    fallbacks: list[dict] = field(default_factory=list)

    def pieces_of(self, doc_id: str) -> list[Piece]:
        return self.pieces.get(doc_id, [])

    def counts(self) -> dict[str, int]:
        """Pieces per split (a piece is a whole document unless a fallback cut it)."""
        out = {s: 0 for s in SPLITS}
        for pieces in self.pieces.values():
            for p in pieces:
                out[p.split] += 1
        return out


def plan_split(docs: Iterable[tuple[str, int]], *, seed: int, val_fraction: float, test_fraction: float) -> SplitPlan:
    """Plan the split of ``docs`` — ``(id, length in characters)`` pairs — so that every split
    with a positive fraction is non-empty. Raises ``ValueError`` when the corpus is too small to
    give every such split at least one character."""
    lengths: dict[str, int] = {}
    pieces: dict[str, list[Piece]] = {}
    for doc_id, n in docs:
        if doc_id in lengths:
            raise ValueError(f"duplicate document id {doc_id!r}")
        lengths[doc_id] = n
        pieces[doc_id] = [Piece(assign_split(doc_id, seed, val_fraction, test_fraction), 0, n)]
    plan = SplitPlan(pieces=pieces)
    fractions = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    total = sum(lengths.values())
    for split in SPLITS:
        if fractions[split] <= 0 or plan.counts()[split] > 0:
            continue
        if len(lengths) * fractions[split] >= 1 and _move_document(plan, split, seed):
            continue
        _cut_document(plan, split, max(1, round(fractions[split] * total)))
    return plan


def _move_document(plan: SplitPlan, split: str, seed: int) -> bool:
    """Move one whole document into the empty ``split`` from a split holding several."""
    counts = plan.counts()
    candidates = [
        doc_id
        for doc_id, pieces in plan.pieces.items()
        if len(pieces) == 1 and counts[pieces[0].split] >= 2
    ]
    if not candidates:
        return False
    chosen = min(candidates, key=lambda d: (hash_unit(f"{split}:{d}", seed), d))
    old = plan.pieces[chosen][0]
    plan.pieces[chosen] = [Piece(split, old.start, old.end)]
    plan.fallbacks.append({"split": split, "action": "move_document", "document": chosen, "from": old.split})
    return True


def _cut_document(plan: SplitPlan, split: str, size: int) -> None:
    """Give the empty ``split`` the last ``size`` characters of the largest piece."""
    doc_id, index, piece = max(
        ((d, i, p) for d, ps in plan.pieces.items() for i, p in enumerate(ps)),
        key=lambda t: (t[2].end - t[2].start, t[0]),  # ties: the larger id, fixed by the ids alone
    )
    length = piece.end - piece.start
    if length < 2:
        raise ValueError("the corpus is too small to give train, val and test a character each")
    size = min(max(1, size), length - 1)
    cut = piece.end - size
    plan.pieces[doc_id][index : index + 1] = [Piece(piece.split, piece.start, cut), Piece(split, cut, piece.end)]
    plan.fallbacks.append(
        {"split": split, "action": "cut_document", "document": doc_id, "from": piece.split, "chars": [cut, piece.end]}
    )
