"""Search spaces, hypotheses and the gate between them.

A ``SearchSpace`` (``search_spaces/*.yaml``, checked against a shipped JSON Schema and the typed
config) says which keys a campaign may change. A ``Hypothesis`` is data: overrides plus a
rationale. ``validate_hypothesis`` is the single gate every proposal passes, from any agent,
before anything is composed or run; what fails becomes a ``Refusal`` with a code and a reason.
Values are canonicalised once (``canonical_value``: floats to ``SIGNIFICANT_DIGITS``, ``-0.0``
is ``0.0``) for the value that runs, the duplicate check and ``config_fingerprint``, the one
fingerprint of the project. The Ax bridge (``ax_parameters``, ``from_ax``, ``to_ax``) lets a
Bayesian agent search the same space and learn from trials proposed by others.
"""

from autoresearch.search.ax_space import ax_name, ax_parameters, from_ax, to_ax
from autoresearch.search.canonical import SIGNIFICANT_DIGITS, canonical_value, clean_text, same_value
from autoresearch.search.constraints import Constraint, ConstraintEvalError, ConstraintSyntaxError
from autoresearch.search.hypothesis import Hypothesis, Proposal, Refusal, Scalar, config_fingerprint
from autoresearch.search.keys import FORBIDDEN_KEYS, config_keys, forbidden_reason
from autoresearch.search.space import Parameter, SearchSpace, SearchSpaceError
from autoresearch.search.validate import validate_hypothesis

__all__ = [
    "FORBIDDEN_KEYS",
    "SIGNIFICANT_DIGITS",
    "Constraint",
    "ConstraintEvalError",
    "ConstraintSyntaxError",
    "Hypothesis",
    "Parameter",
    "Proposal",
    "Refusal",
    "Scalar",
    "SearchSpace",
    "SearchSpaceError",
    "ax_name",
    "ax_parameters",
    "canonical_value",
    "clean_text",
    "config_fingerprint",
    "config_keys",
    "forbidden_reason",
    "from_ax",
    "same_value",
    "to_ax",
    "validate_hypothesis",
]
