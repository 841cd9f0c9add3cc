"""The llm agent: any litellm model proposes a hypothesis as JSON, checked like every other one.

The model is an untrusted source. Its answer is text that ``validate_hypothesis`` parses as JSON
and checks against the search space; nothing in it is executed or interpolated. An answer that is
not a valid hypothesis is recorded as a refusal and the model is asked once more, told why.

The API key is read from the environment variable the config names, at call time, and goes only
into litellm's request header. It is masked out of everything else the agent produces: the
prompt, log lines, ``AgentCall`` records and exception messages.

Calls are bounded: a timeout per call, ``max_retries`` retries with exponential backoff on HTTP
errors and timeouts, and after ``max_consecutive_failures`` failed calls in a row the agent raises
``AgentUnavailable`` (now and on every later call) so that the campaign goes on with an offline
agent. Every call, failed or not, is reported through ``on_call`` with its tokens, cost and latency.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Callable, Optional

from autoresearch.agents.base import AgentCall, AgentContext, AgentUnavailable, OnCall, TrialRecord, history_seen
from autoresearch.agents.prompt import BuiltPrompt, build_prompt, clean
from autoresearch.config.schema import LLMAgentConfig
from autoresearch.search import Hypothesis, Proposal, Refusal, validate_hypothesis

log = logging.getLogger(__name__)

_ERROR_CHARS = 300
_ANSWER_CHARS = 2000  # a refused answer, echoed back to the model on the re-ask


def import_litellm() -> Any:
    """Import litellm offline-safe: its cost map from the package, not the network; no banners."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # it prints provider lists and help links on every error
    return litellm


class LLMAgent:
    """Proposes through ``litellm.completion``; see the module docstring for the guarantees."""

    def __init__(
        self,
        cfg: LLMAgentConfig,
        *,
        on_call: Optional[OnCall] = None,
        name: str = "llm",
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self.name = name
        self._on_call = on_call
        self._sleep = sleep
        self._failures = 0  # failed calls in a row
        self.unavailable_reason: Optional[str] = None
        self.token_counting = ""  # "litellm.token_counter" or "chars/4", once a prompt was built
        self.last_prompt: Optional[BuiltPrompt] = None
        self._litellm: Any = None

    # ------------------------------------------------------------------ protocol
    def observe(self, record: TrialRecord) -> None:
        """Nothing to update: the history reaches the model through the prompt."""

    def propose(self, ctx: AgentContext) -> Proposal:
        if self.unavailable_reason is not None:
            raise AgentUnavailable(self.unavailable_reason)
        secrets = self._secrets()
        seen = history_seen(ctx)
        answer = self._ask(ctx, secrets, extra=[])
        if isinstance(answer, Refusal):
            return Proposal(hypothesis=None, refusals=[answer])
        first = validate_hypothesis(answer, space=ctx.space, base=ctx.base, agent=self.name, seen=seen)
        if isinstance(first, Hypothesis):
            return Proposal(hypothesis=_scrubbed(first, secrets))
        first = self._as_data(first, answer, secrets)
        # One re-ask, with the reason, so the model can correct a slip (a typo'd key, a bound).
        extra = [
            {"role": "assistant", "content": clean(answer, secrets, _ANSWER_CHARS)},
            {"role": "user", "content": f"That answer was refused: {clean(first.reason, secrets)} "
                                        "Reply with one corrected JSON object only."},
        ]
        try:
            again = self._ask(ctx, secrets, extra=extra)
        except AgentUnavailable:
            return Proposal(hypothesis=None, refusals=[first])  # the next propose() raises
        if isinstance(again, Refusal):
            return Proposal(hypothesis=None, refusals=[first, again])
        second = validate_hypothesis(again, space=ctx.space, base=ctx.base, agent=self.name, seen=seen)
        if isinstance(second, Hypothesis):
            return Proposal(hypothesis=_scrubbed(second, secrets), refusals=[first])
        return Proposal(hypothesis=None, refusals=[first, self._as_data(second, again, secrets)])

    # ------------------------------------------------------------------ one question
    def _ask(self, ctx: AgentContext, secrets: list[str], extra: list[dict[str, str]]) -> str | Refusal:
        """The model's answer text, or a Refusal saying every retry failed (AgentUnavailable when done)."""
        built = build_prompt(ctx, budget=self.cfg.prompt_token_budget, count=self._count, secrets=secrets, extra=extra)
        self.last_prompt = built
        if built.over_budget:
            log.warning("llm prompt needs %d tokens even without history, over agent.llm.prompt_token_budget=%d; "
                        "sending it anyway", built.tokens, self.cfg.prompt_token_budget)
        log.debug("llm prompt: %d tokens (%s), %d full + %d short history lines, %d summarised, %d dropped",
                  built.tokens, self.token_counting, built.shown_full, built.shown_short, built.summarised, built.dropped)
        last_error = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                delay = self.cfg.backoff_s * 2 ** (attempt - 1)
                log.info("llm retry %d/%d in %.1f s after: %s", attempt, self.cfg.max_retries, delay, last_error)
                self._sleep(delay)
            outcome = self._call(built.messages, secrets)
            if isinstance(outcome, str):
                return outcome
            last_error, retryable = outcome
            if not retryable:
                break
        return Refusal(reason=f"the model could not be reached: {last_error}", agent=self.name, code="agent_error")

    def _call(self, messages: list[dict[str, str]], secrets: list[str]) -> str | tuple[str, bool]:
        """One HTTP call: the answer text, or (scrubbed error, retryable). Raises AgentUnavailable."""
        litellm = self._lib()
        key = self._secrets()
        started = time.monotonic()
        failure: Optional[tuple[str, str]] = None
        try:
            response = litellm.completion(
                model=self.cfg.model,
                api_base=self.cfg.api_base,
                api_key=key[0] if key else None,
                messages=messages,
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
                timeout=self.cfg.timeout_s,
                max_retries=0,  # the provider SDK must not retry behind our bound
                drop_params=True,  # providers that lack a parameter ignore it instead of failing
            )
        except Exception as err:  # noqa: BLE001 - every provider error is data about the provider
            # Keep only a scrubbed message: the exception itself may quote the key (a 401 body
            # often does), so it is not chained into anything raised from here.
            failure = (type(err).__name__, clean(f"{type(err).__name__}: {err}", secrets, _ERROR_CHARS))
        if failure is not None:
            return self._failed(*failure, latency=time.monotonic() - started)
        latency = time.monotonic() - started
        self._failures = 0
        content = _content(response)
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        self._report(AgentCall(agent=self.name, model=self.cfg.model, ok=True, latency_s=latency,
                               prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                               cost_usd=self._cost(response)))
        log.info("llm %s answered in %.2f s (%d prompt + %d completion tokens)", self.cfg.model, latency,
                 prompt_tokens, completion_tokens)
        return content

    def _failed(self, kind: str, message: str, *, latency: float) -> tuple[str, bool]:
        """Count and report a failed call; raise AgentUnavailable when it was one too many."""
        self._failures += 1
        self._report(AgentCall(agent=self.name, model=self.cfg.model, ok=False, latency_s=latency, error=message))
        log.warning("llm call to %s failed after %.1f s (%d in a row): %s", self.cfg.model, latency, self._failures, message)
        fatal = kind in ("AuthenticationError", "PermissionDeniedError", "NotFoundError")
        if fatal or self._failures >= self.cfg.max_consecutive_failures:
            why = "a permanent error" if fatal else f"{self._failures} failed calls in a row"
            self.unavailable_reason = f"llm agent {self.cfg.model} unavailable after {why}; last error: {message}"
            raise AgentUnavailable(self.unavailable_reason)
        return message, kind != "BadRequestError"

    # ------------------------------------------------------------------ helpers
    def _lib(self) -> Any:
        if self._litellm is None:
            self._litellm = import_litellm()
        return self._litellm

    def _secrets(self) -> list[str]:
        value = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        return [value] if value else []

    def _count(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens by litellm's counter (tiktoken, bundled: works offline), else ~4 chars/token."""
        try:
            n = int(self._lib().token_counter(model=self.cfg.model, messages=messages))
            self.token_counting = "litellm.token_counter"
            return n
        except Exception:  # noqa: BLE001 - an unknown tokenizer must not stop the agent
            self.token_counting = "chars/4"
            return sum(len(m.get("content", "")) // 4 + 4 for m in messages)

    def _cost(self, response: Any) -> float:
        try:
            return float(self._lib().completion_cost(completion_response=response) or 0.0)
        except Exception:  # noqa: BLE001 - unknown models have no price: 0, as documented
            return 0.0

    def _report(self, call: AgentCall) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(call)
        except Exception:  # noqa: BLE001 - bookkeeping must not break proposing
            log.exception("recording an llm call failed")

    def _as_data(self, refusal: Refusal, answer: str, secrets: list[str]) -> Refusal:
        """The refusal with the raw answer kept as (clipped, secret-free) data for the store."""
        return Refusal(reason=clean(refusal.reason, secrets, 1000), raw=clean(answer, secrets, 4000),
                       agent=refusal.agent, code=refusal.code)


def _scrubbed(h: Hypothesis, secrets: list[str]) -> Hypothesis:
    """The model's free text goes to the store and to later prompts: mask any secret in it."""
    if not any(s in h.rationale or s in h.expected_effect for s in secrets):
        return h
    return dataclasses.replace(h, rationale=clean(h.rationale, secrets, 4000),
                               expected_effect=clean(h.expected_effect, secrets, 2000))


def _content(response: Any) -> str:
    try:
        return str(response.choices[0].message.content or "")
    except (AttributeError, IndexError, TypeError):
        return ""
