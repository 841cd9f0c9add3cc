"""Memory across campaigns and grounding in known results, through the real campaign loop: a
second campaign refuses to repeat the first one's trial (with a pointer to it), and a hypothesis
that matches a shipped negative result is flagged with its citation instead of being run."""

from __future__ import annotations

from llm_server import Reply, llm_server  # noqa: F401  (fixture used by name)
from test_campaign import campaign_overrides, run

from autoresearch.store import KnowledgeStore


def _llm(server, name: str, *extra: str) -> list[str]:
    return [f"campaign.name={name}", "agent=llm", "campaign.max_trials=1", "critic.noise_seeds=1",
            "critic.validation_seeds=2", f"agent.llm.api_base={server.api_base}", "agent.llm.model=openai/test-model",
            "agent.llm.api_key_env=LOCAL_LLM_KEY", "agent.llm.timeout_s=5", "agent.llm.max_retries=0",
            "model=nano", *extra]  # a rotary baseline, so that learned positions are a change (a known negative)


def test_duplicate_across_campaigns_and_known_negative_are_refused(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local-test-server")
    tried = {"optim.lr": 0.0061}
    llm_server.script(Reply.answer(tried, rationale="a higher learning rate trains faster in short runs"))
    run(campaign_overrides(tmp_path, *_llm(llm_server, "first")))

    llm_server.script(
        Reply.answer(tried, rationale="a higher learning rate trains faster in short runs"),   # repeat of "first"
        Reply.answer({"model.pos_encoding": "learned"}, rationale="learned absolute positions"),  # known negative
        Reply.answer({"optim.lr": 0.004}, rationale="a slightly higher learning rate"),
    )
    run(campaign_overrides(tmp_path, *_llm(llm_server, "second")))

    store = KnowledgeStore(tmp_path / "knowledge.sqlite")
    first = store.campaign("first")
    second = store.campaign("second")
    [earlier] = [t for t in store.trials(first.id, kind="hypothesis")]
    refused = store.hypotheses(second.id, status="refused")
    duplicate = [h for h in refused if h.refusal_code == "duplicate"]
    assert duplicate, [(h.refusal_code, h.refusal_reason) for h in refused]
    assert f"trial {earlier.id}" in duplicate[0].refusal_reason and "first" in duplicate[0].refusal_reason
    flagged = store.hypotheses(second.id, status="flagged")
    assert len(flagged) == 1 and flagged[0].refusal_code == "known_negative"
    assert "http" in flagged[0].refusal_reason  # the citation, with its link
    [ran] = store.trials(second.id, kind="hypothesis")
    assert ran.overrides == {"optim.lr": 0.004}
