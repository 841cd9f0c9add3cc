"""The llm agent: any litellm model proposes a hypothesis as JSON, checked like every other one.

The model is an untrusted source. Its answer is text that ``validate_hypothesis`` parses as JSON
and checks against the search space; nothing in it is executed or interpolated. An answer that is
not a valid hypothesis is recorded as a refusal and the model is asked once more, told why. Its
recent refusals (its own, and the campaign's refusals of what it proposed) go into every later
prompt, quoted and clipped as data, so that the next proposal does not repeat the mistake.

The API key is read from the environment variable the config names, at call time, and goes only
into litellm's request header. It is masked out of everything else the agent produces: the
prompt, log lines, ``AgentCall`` records and exception messages.

Calls are bounded: a timeout per call (short by default: a slow endpoint must not hold trials
back), ``max_retries`` retries with exponential back-off (``tenacity``) on HTTP and connection
errors — a time-out is not retried, the slot goes to the fallback agent instead. The agent raises
``AgentUnavailable`` (now and on every later call) after ``max_consecutive_failures`` failed calls
in a row, or as many proposals in a row that did not become a trial (junk answers, time-outs,
proposals the campaign refused), so that the campaign goes on with an offline agent. Every call,
failed or not, is reported through ``on_call`` with its tokens, cost and latency.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import deque
from typing import Any, Callable, Optional

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from autoresearch.agents.base import AgentCall, AgentContext, AgentUnavailable, OnCall, TrialRecord, history_seen
from autoresearch.agents.prompt import BuiltPrompt, build_prompt, clean
from autoresearch.config.schema import LLMAgentConfig
from autoresearch.search import Hypothesis, Proposal, Refusal, validate_hypothesis

log = logging.getLogger(__name__)

_ERROR_CHARS = 300
_ANSWER_CHARS = 2000  # a refused answer, echoed back to the model on the re-ask
RECENT_REFUSALS = 5  # refused proposals quoted in every later prompt
_REFUSED_ANSWER_CHARS = 240
_REFUSED_REASON_CHARS = 240
_PERMANENT = ("AuthenticationError", "PermissionDeniedError", "NotFoundError")


class _CallFailed(Exception):
    """One failed HTTP call (already counted and reported); ``retryable`` steers tenacity."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


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
        self._misses = 0  # proposals in a row that did not become a trial
        self._last_miss = ""
        self._refused: deque[str] = deque(maxlen=RECENT_REFUSALS)  # prompt lines, already cleaned
        self.unavailable_reason: Optional[str] = None
        self.token_counting = ""  # "litellm.token_counter" or "chars/4", once a prompt was built
        self.last_prompt: Optional[BuiltPrompt] = None
        self._litellm: Any = None

    @property
    def model(self) -> str:
        return self.cfg.model

    # ------------------------------------------------------------------ protocol
    def observe(self, record: TrialRecord) -> None:
        """The history reaches the model through the prompt; here only: did our proposal run?"""
        if record.agent != self.name:
            return
        if record.refused:  # the campaign's gate refused what we proposed (a repeat, a known result)
            reason = record.reason or "refused by the campaign (a repeat of an earlier run, a known result, or a config that does not build)"
            self._remember(json.dumps(record.overrides, sort_keys=True, default=str), "campaign", reason, self._secrets())
            self._missed(f"the campaign refused its proposal: {clean(reason, self._secrets(), 200)}")
        else:
            self._misses = 0

    def propose(self, ctx: AgentContext) -> Proposal:
        if self.unavailable_reason is not None:
            raise AgentUnavailable(self.unavailable_reason)
        self._give_up_if_missing()
        secrets = self._secrets()
        proposal = self._propose(ctx, secrets)
        if proposal.hypothesis is None:
            last = proposal.refusals[-1].reason if proposal.refusals else "no answer"
            self._missed(clean(last, secrets, 200))
            self._give_up_if_missing(proposal.refusals)
        return proposal

    def _propose(self, ctx: AgentContext, secrets: list[str]) -> Proposal:
        seen = history_seen(ctx)
        answer = self._ask(ctx, secrets, extra=[])
        if isinstance(answer, Refusal):
            return Proposal(hypothesis=None, refusals=[answer])
        first = validate_hypothesis(answer, space=ctx.space, base=ctx.base, agent=self.name, seen=seen)
        if isinstance(first, Hypothesis):
            return Proposal(hypothesis=_scrubbed(first, secrets))
        first = self._as_data(first, answer, secrets)
        self._remember(answer, first.code, first.reason, secrets)
        # One re-ask, with the reason, so the model can correct a slip (a typo'd key, a bound).
        extra = [
            {"role": "assistant", "content": clean(answer, secrets, _ANSWER_CHARS)},
            {"role": "user", "content": f"That answer was refused: {clean(first.reason, secrets)} "
                                        "Reply with one corrected JSON object only."},
        ]
        try:
            again = self._ask(ctx, secrets, extra=extra)
        except AgentUnavailable as err:
            raise AgentUnavailable(str(err), refusals=[first]) from None
        if isinstance(again, Refusal):
            return Proposal(hypothesis=None, refusals=[first, again])
        second = validate_hypothesis(again, space=ctx.space, base=ctx.base, agent=self.name, seen=seen)
        if isinstance(second, Hypothesis):
            return Proposal(hypothesis=_scrubbed(second, secrets), refusals=[first])
        second = self._as_data(second, again, secrets)
        self._remember(again, second.code, second.reason, secrets)
        return Proposal(hypothesis=None, refusals=[first, second])

    # ------------------------------------------------------------------ failures and junk
    def _missed(self, why: str) -> None:
        self._misses += 1
        self._last_miss = why
        log.info("llm proposal did not become a trial (%d in a row): %s", self._misses, why)

    def _give_up_if_missing(self, refusals: list[Refusal] = ()) -> None:  # type: ignore[assignment]
        """Raise ``AgentUnavailable`` once ``max_consecutive_failures`` proposals in a row came to nothing."""
        if self._misses < self.cfg.max_consecutive_failures:
            return
        self.unavailable_reason = (f"llm agent {self.cfg.model} unavailable after {self._misses} proposals in a row "
                                   f"without a trial; last: {self._last_miss}")
        raise AgentUnavailable(self.unavailable_reason, refusals=refusals)

    def _remember(self, answer: Any, code: str, reason: str, secrets: list[str]) -> None:
        """A refused answer, quoted as a JSON string (one line, clipped, secrets masked), for later prompts."""
        def quoted(text: Any, limit: int) -> str:
            return json.dumps(clean(text, secrets, limit), ensure_ascii=True)  # control characters escaped

        self._refused.append(f"{quoted(answer, _REFUSED_ANSWER_CHARS)} → refused ({clean(code, secrets, 40)}), "
                             f"reason {quoted(reason, _REFUSED_REASON_CHARS)}")

    @property
    def recent_refusals(self) -> list[str]:
        """The refusal lines the next prompt will quote, oldest first."""
        return list(self._refused)

    # ------------------------------------------------------------------ one question
    def _ask(self, ctx: AgentContext, secrets: list[str], extra: list[dict[str, str]]) -> str | Refusal:
        """The model's answer text, or a Refusal saying the call failed (AgentUnavailable when done)."""
        built = build_prompt(ctx, budget=self.cfg.prompt_token_budget, count=self._count, secrets=secrets, extra=extra,
                             refused=list(self._refused))
        self.last_prompt = built
        if built.over_budget:
            log.warning("llm prompt needs %d tokens even without history, over agent.llm.prompt_token_budget=%d; "
                        "sending it anyway", built.tokens, self.cfg.prompt_token_budget)
        log.debug("llm prompt: %d tokens (%s), %d full + %d short history lines, %d summarised, %d dropped, %d refusals",
                  built.tokens, self.token_counting, built.shown_full, built.shown_short, built.summarised, built.dropped,
                  built.refusals)
        retrying = Retrying(
            stop=stop_after_attempt(self.cfg.max_retries + 1),
            wait=wait_exponential(multiplier=self.cfg.backoff_s, min=0),
            retry=retry_if_exception(lambda e: isinstance(e, _CallFailed) and e.retryable),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._call, built.messages, secrets)
        except _CallFailed as failed:
            return Refusal(reason=f"the model could not be reached: {failed.message}", agent=self.name, code="agent_error")

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("llm retry %d/%d in %.1f s after: %s", state.attempt_number, self.cfg.max_retries, delay,
                 getattr(error, "message", error))

    def _call(self, messages: list[dict[str, str]], secrets: list[str]) -> str:
        """One HTTP call: the answer text. Raises _CallFailed, or AgentUnavailable when it was one too many."""
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
            kind, message = failure
            self._failed(kind, message, latency=time.monotonic() - started)
            # A time-out is not retried: the slot goes to the fallback agent rather than wait again.
            raise _CallFailed(message, retryable=kind != "BadRequestError" and "Timeout" not in kind)
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

    def _failed(self, kind: str, message: str, *, latency: float) -> None:
        """Count and report a failed call; raise AgentUnavailable when it was one too many."""
        self._failures += 1
        self._report(AgentCall(agent=self.name, model=self.cfg.model, ok=False, latency_s=latency, error=message))
        log.warning("llm call to %s failed after %.1f s (%d in a row): %s", self.cfg.model, latency, self._failures, message)
        fatal = kind in _PERMANENT
        if fatal or self._failures >= self.cfg.max_consecutive_failures:
            why = "a permanent error" if fatal else f"{self._failures} failed calls in a row"
            self.unavailable_reason = f"llm agent {self.cfg.model} unavailable after {why}; last error: {message}"
            raise AgentUnavailable(self.unavailable_reason)

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
