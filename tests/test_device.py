"""The CPU peak behind MFU: measured by the first few processes, then read from the cache."""

from __future__ import annotations

import json

import torch

from autoresearch.train import device


def test_cpu_peak_is_measured_a_few_times_then_cached(tmp_path, monkeypatch):
    calls = []

    def fake_measure() -> float:
        calls.append(1)
        return [3e9, 5e9, 4e9, 2e9, 1e9][len(calls) - 1]

    monkeypatch.setattr(device, "measure_cpu_peak_flops", fake_measure)
    cpu = torch.device("cpu")
    values = [device.peak_flops(cpu, cache_dir=tmp_path) for _ in range(device.PEAK_FLOPS_MEASUREMENTS + 3)]
    assert len(calls) == device.PEAK_FLOPS_MEASUREMENTS  # later processes trust the cache
    assert values[0] == 3e9 and values[1:] == [5e9] * (len(values) - 1)  # the best measurement is kept
    assert device.peak_flops(cpu, override=7e9, cache_dir=tmp_path) == 7e9


def test_cpu_peak_reads_the_older_cache_format(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "measure_cpu_peak_flops", lambda: 1e9)
    key = f"{device._cpu_model()}|threads={torch.get_num_threads()}"
    (tmp_path / "peak_flops.json").write_text(json.dumps({key: 6e9}))
    assert device.peak_flops(torch.device("cpu"), cache_dir=tmp_path) == 6e9
    entry = json.loads((tmp_path / "peak_flops.json").read_text())[key]
    assert entry == {"peak": 6e9, "measurements": 2}
