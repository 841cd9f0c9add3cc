"""NanoTrainer: budgeted training of the GPT, scored in validation bits per byte."""

from autoresearch.train.device import peak_flops, resolve_device, tune_allocator
from autoresearch.train.schedule import Budget, lr_multiplier
from autoresearch.train.trainer import NanoTrainer, evaluate_bpb, seed_everything

__all__ = ["Budget", "NanoTrainer", "evaluate_bpb", "lr_multiplier", "peak_flops", "resolve_device", "seed_everything", "tune_allocator"]
