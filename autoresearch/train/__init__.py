"""NanoTrainer: budgeted training of the GPT, scored in validation bits per byte.

Also the sharpness monitor (``SharpnessMonitor``, ``hutchinson_trace`` inside ``hvp_forward()``):
it acts during training, so it lives with the trainer, which imports nothing above it.
"""

from autoresearch.train.device import peak_flops, resolve_device, tune_allocator
from autoresearch.train.schedule import Budget, lr_multiplier
from autoresearch.train.sharpness import Intervention, SharpnessMonitor, hutchinson_trace, hvp_forward
from autoresearch.train.trainer import NanoTrainer, evaluate_bpb, seed_everything

__all__ = [
    "Budget",
    "Intervention",
    "NanoTrainer",
    "SharpnessMonitor",
    "evaluate_bpb",
    "hutchinson_trace",
    "hvp_forward",
    "lr_multiplier",
    "peak_flops",
    "resolve_device",
    "seed_everything",
    "tune_allocator",
]
