"""The GPT and its architecture switches (positions, norm, activation, GQA, QK-norm, tying).

``GPT(cfg)`` builds the model from a ``ModelConfig`` whose ``vocab_size`` is set;
``flops_per_token(cfg)`` gives the training FLOPs per token without building it.
"""

from autoresearch.model.gpt import GPT, flops_per_token

__all__ = ["GPT", "flops_per_token"]
