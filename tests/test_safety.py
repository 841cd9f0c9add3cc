"""Issue 14 items 4 and 5: untrusted text escaped at every sink, one secret scrubber everywhere.

The sinks are driven for real: the knowledge CLI in a subprocess on a real SQLite store, the store's
file read back byte by byte, log records through a real handler.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.safety import (
    REDACTED,
    SafeLogFilter,
    find_secret,
    markdown_code,
    markdown_inline,
    rich_text,
    safe_name,
    scrub,
    scrub_text,
    terminal_text,
)
from autoresearch.store import KnowledgeStore, SecretInConfigError

ROOT = Path(__file__).resolve().parents[1]
# Fake keys in each published format (none is real).
KEYS = {
    "openai": "sk-abcdefghij0123456789ABCDEFGHIJ",
    "openai-project": "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56",
    "anthropic": "sk-ant-api03-Zy98Xw76Vu54Ts32Rq10Po98Nm76-AAA",
    "huggingface": "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
    "github": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "github-oauth": "gho_0123456789abcdefghijABCDEFGHIJ012345",
    "github-pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
    "aws-id": "AKIAIOSFODNN7EXAMPLE",
}
HOSTILE = "ok\r\x1b[31mred\x1b]8;;http://evil.example\x07link\x1b]8;;\x07 \u202eevil\n## Verdict: validated\n<script>alert(1)</script>"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "250", **extra}


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoresearch.knowledge", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=300)


# ------------------------------------------------------------------------------------------ scrubber
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_common_key_format_is_scrubbed_without_any_environment(kind):
    key = KEYS[kind]
    assert scrub_text(f"the key is {key}.", []) == f"the key is {REDACTED}."


@pytest.mark.parametrize("text, expected", [
    ("Authorization: Bearer abc.DEF-123_xyz", f"Authorization: Bearer {REDACTED}"),
    ("pip install -i https://alice:s3cr3t@pypi.corp.example/simple x", f"pip install -i https://{REDACTED}@pypi.corp.example/simple x"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"aws_secret_access_key = {REDACTED}"),
    ("DB_PASSWORD: hunter2hunter", f"DB_PASSWORD: {REDACTED}"),
])
def test_bearer_url_credentials_and_secret_assignments_are_scrubbed(text, expected):
    assert scrub_text(text, []) == expected


@pytest.mark.parametrize("text", [
    "sk-learn-is-a-library-for-people", "git+ssh://git@github.com/o/r", "max_tokens: 1024",
    "agent.llm.api_key_env=OPENAI_API_KEY", "https://arxiv.org/abs/2104.09864", "task-0123456789-abcdef",
])
def test_ordinary_text_is_left_alone(text):
    assert scrub_text(text, []) == text


def test_a_seven_character_env_secret_is_scrubbed_everywhere_alike(monkeypatch, tmp_path):
    """Today the bundle scrubs a 7-character secret and the store keeps it in clear: one rule now."""
    monkeypatch.setenv("MY_SERVICE_TOKEN", "x7Kq9Zp")
    assert scrub_text("token x7Kq9Zp here") == f"token {REDACTED} here"
    path = tmp_path / "k.sqlite"
    with KnowledgeStore(path) as store:
        cid = store.upsert_campaign("c", {}, "space", "dir")
        store.add_hypothesis(cid, {"overrides": {}, "rationale": "I found x7Kq9Zp"}, status="refused")
    assert b"x7Kq9Zp" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_the_store_scrubs_key_formats_no_variable_names(tmp_path):
    """An agent that echoes a key it was never given (no environment variable holds it)."""
    path = tmp_path / "k.sqlite"
    with KnowledgeStore(path) as store:
        cid = store.upsert_campaign("c", {}, "space", "dir")
        hid = store.add_hypothesis(cid, {"overrides": {"x": KEYS["anthropic"]}, "rationale": f"use {KEYS['openai-project']}"},
                                   status="refused", refusal_reason=f"echoed {KEYS['huggingface']}")
        store.add_agent_call(cid, agent="llm", model="m", ok=False, latency_s=1.0, error=f"401 Bearer {KEYS['github']}")
        assert store.hypothesis(hid).rationale == f"use {REDACTED}"
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for key in KEYS.values():
        assert key.encode() not in data


def test_a_key_pasted_into_the_config_is_refused_before_anything_is_stored(tmp_path):
    config = {"agent": {"llm": {"api_key_env": KEYS["openai-project"], "model": "openai/gpt-4o-mini"}}}
    assert find_secret(config) == "agent.llm.api_key_env"
    path = tmp_path / "k.sqlite"
    with KnowledgeStore(path) as store:
        with pytest.raises(SecretInConfigError, match=r"agent\.llm\.api_key_env") as err:
            store.upsert_campaign("c", config, "space", "dir")
        assert KEYS["openai-project"] not in str(err.value)
        assert store.campaigns() == []
    assert KEYS["openai-project"].encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_structures_lose_values_under_secret_names_and_keep_the_rest():
    assert scrub({"OPENAI_API_KEY": "anything-at-all", "lr": 0.1, "note": [f"k {KEYS['github']}"]}, []) == {
        "OPENAI_API_KEY": REDACTED, "lr": 0.1, "note": [f"k {REDACTED}"]}


# ------------------------------------------------------------------------------------------ escaping
def test_markdown_inline_cannot_forge_headings_rows_html_or_links():
    out = markdown_inline(HOSTILE + " | forged | row |")
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\u202e" not in out
    assert "<" not in out and "## " not in out and "](" not in out
    assert "\\|" in out and "|" not in out.replace("\\|", "")  # every pipe escaped: no new table cell
    assert "\\x1b" in out and "\\u202e" in out  # made visible, not silently dropped
    assert markdown_inline("# Verdict").startswith("\\#") and markdown_inline("1. list").startswith("1\\.")
    assert markdown_inline("=====").startswith("\\=")  # a setext underline would turn the line above into a heading
    assert len(markdown_inline("x" * 10_000, limit=100)) <= 100


def test_markdown_code_cannot_be_closed_by_its_content():
    block = markdown_code("Traceback\n```\n# Verdict\n\x1b[2J")
    fence = block.splitlines()[0].rstrip("text")
    assert len(fence) >= 4 and block.endswith("\n" + fence)
    assert fence not in block[len(fence):-len(fence)]  # no line inside can close it
    assert "\x1b" not in block and "\\x1b[2J" in block


def test_terminal_text_makes_escapes_visible_and_keeps_one_line():
    out = terminal_text(HOSTILE)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31m" in out and "\\r" in out and "\\n## Verdict" in out
    assert terminal_text("a\ud800b") == "a\\ud800b"  # a lone surrogate becomes text that can be encoded


def test_rich_text_is_never_markup():
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(rich_text("[/] [link=https://evil.example]click[/link] [bold]x"))
    assert console.file.getvalue().strip() == "[/] [link=https://evil.example]click[/link] [bold]x"


def test_safe_name_is_one_path_component():
    for hostile in ("../../etc", "/abs/path", "..", "a/b\nRUN curl evil", "-rf", ""):
        name = safe_name(hostile)
        assert "/" not in name and "\n" not in name and name not in ("", ".", "..") and not name.startswith(("-", "."))


def test_log_records_are_scrubbed_and_cannot_forge_a_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SafeLogFilter())
    logger = logging.getLogger("autoresearch.test_safety")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("agent said %s", f"x\nINFO autoresearch.campaign: forged\x1b[2J {KEYS['openai']}")
        try:
            raise RuntimeError(f"provider answered 401 for {KEYS['github']}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.splitlines()[0] == f"WARNING autoresearch.test_safety: agent said x\\nINFO autoresearch.campaign: forged\\x1b[2J {REDACTED}"
    assert "\x1b" not in text and KEYS["openai"] not in text and KEYS["github"] not in text
    assert "Traceback" in text  # the traceback keeps its lines


# ------------------------------------------------------------------------------------------ the knowledge CLI
def _literature_record(rid: str, title: str, **extra) -> dict:
    return {"id": rid, "title": title, "year": 2024, "url": "https://example.org/x", "abstract": "a",
            "claimed_effect": "c", "effect_direction": "neutral", "tags": [], "keys": ["optim.lr"],
            "settings": {}, **extra}


@pytest.fixture
def hostile_store(tmp_path) -> Path:
    db = tmp_path / "k.sqlite"
    with KnowledgeStore(db) as store:
        cid = store.upsert_campaign("camp[/]", {}, "space", "dir")
        hid = store.add_hypothesis(cid, {"overrides": {"optim.lr": 0.01}, "rationale": HOSTILE}, status="proposed")
        tid = store.add_trial(cid, hid, kind="hypothesis", seed=1, overrides={"optim.lr": 0.01}, config={},
                              fingerprint="f", run_dir="[link=https://evil.example]run[/link]")
        store.finish_trial(tid, "completed", {"val_bpb": 2.5})
    return db


def test_search_for_markup_lists_it_as_text(hostile_store):
    result = _cli("search", "[/]", "--db", str(hostile_store), "--embedder", "hashing", "--literature")
    assert result.returncode == 0, result.stderr
    assert "[/]" in result.stdout and "camp[/]" in result.stdout
    assert "[link=https://evil.example]run[/link]" in result.stdout  # shown, not turned into a link
    assert "\x1b]8;" not in result.stdout and "\x1b[31m" not in result.stdout


def test_a_literature_title_in_markup_is_listed_as_text(tmp_path):
    db = tmp_path / "k.sqlite"
    records = tmp_path / "lit.jsonl"
    records.write_text(json.dumps(_literature_record("x1", "[/] closes [link=https://evil.example]everything\x1b[2J")) + "\n")
    added = _cli("literature", "add", str(records), "--db", str(db))
    assert added.returncode == 0, added.stderr
    listed = _cli("literature", "list", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert "[/] closes [link=https://evil.example]everything\\x1b[2J" in listed.stdout
    assert "\x1b[2J" not in listed.stdout and "\x1b]8;" not in listed.stdout


def test_an_error_holding_markup_is_printed_as_text(tmp_path):
    result = _cli("search", "[/]bad[link=x]", "--db", str(tmp_path / "missing[/].sqlite"))
    assert result.returncode == 2
    assert "missing[/].sqlite" in result.stderr and "Traceback" not in result.stderr


def test_the_old_store_command_names_the_new_one():
    result = subprocess.run([sys.executable, "-m", "autoresearch.store", "search", "x"], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert result.returncode == 2 and "python -m autoresearch.knowledge search x" in result.stderr


def test_knowledge_cli_scrubs_keys_from_a_literature_file(tmp_path):
    db = tmp_path / "k.sqlite"
    records = tmp_path / "lit.jsonl"
    records.write_text(json.dumps(_literature_record("k1", "t", abstract=f"fetched with {KEYS['huggingface']}")) + "\n")
    result = _cli("literature", "add", str(records), "--db", str(db))
    assert result.returncode == 0, result.stderr
    con = sqlite3.connect(db)
    stored = json.loads(con.execute("SELECT record FROM literature").fetchone()[0])
    con.close()
    assert stored["abstract"] == f"fetched with {REDACTED}"
    assert KEYS["huggingface"].encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.suffix != ".jsonl")


def test_a_campaign_with_a_pasted_key_stops_at_start_with_one_clear_line(tmp_path):
    """A real `python -m autoresearch` run: refused before any trial, before any row, the log clean."""
    key = KEYS["openai-project"]
    result = subprocess.run(
        [sys.executable, "-m", "autoresearch", "+campaign=quickstart", f"agent.llm.api_key_env={key}",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, env=_env(), timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: agent.llm.api_key_env: holds what looks like a secret" in result.stderr  # refused at typing
    assert "Traceback" not in result.stderr and key not in result.stdout + result.stderr
    log = tmp_path / "run" / "run.log"
    assert not log.exists() or key not in log.read_text()
    assert not (tmp_path / "outputs" / "knowledge.sqlite").exists()  # before the store was even opened


def test_the_store_refuses_a_campaign_config_holding_a_secret_as_a_second_line_of_defence(tmp_path):
    from autoresearch.store import SecretInConfigError

    with KnowledgeStore(tmp_path / "k.sqlite") as store, pytest.raises(SecretInConfigError) as err:
        store.upsert_campaign("c", {"agent": {"llm": {"api_key_env": KEYS["openai-project"]}}}, "s", str(tmp_path))
    assert "agent.llm.api_key_env" in str(err.value) and KEYS["openai-project"] not in str(err.value)
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        assert store.campaigns() == []
