"""cnncore.bench and `python -m cnncore bench`: the machinery works and reports what it says.
Nothing here asserts a speed (speed lives in benchmarks/); only that the figures are figures."""

import json
import math
import subprocess
import sys

import pytest

import cnncore
from cnncore import _core, bench


def test_fma_peak_is_measured_positive_and_validated():
    peak = bench.peak_gflops(0.05)
    assert math.isfinite(peak) and peak > 0.1
    for bad in (0, -1, 61, float("nan")):
        with pytest.raises(ValueError, match="seconds must be in"):
            _core.measure_fma_peak_gflops(bad)


def test_interleaved_runs_every_case_in_turn():
    calls = []
    times = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              repeats=3, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then alternating


def test_geomean_and_spread():
    assert bench.geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert bench.geomean([2.0, 0.0, float("nan")]) == pytest.approx(2.0)  # ignores non-ratios
    assert math.isnan(bench.geomean([]))
    assert bench.spread_pct([1.0, 2.0, 3.0]) == pytest.approx(100.0)


def test_conv_shapes_are_the_issue_list():
    names = [s[0] for s in bench.CONV_SHAPES]
    assert len(names) == len(set(names)) == 15
    for name, c, k, hw, ks, stride, pad, groups, b in bench.CONV_SHAPES:
        assert c % groups == 0 and k % groups == 0, name


def test_quick_run_reports_every_case(tmp_path, capsys):
    threads = cnncore.get_num_threads()
    result = bench.run_quick(threads, repeats=1)
    out = capsys.readouterr().out
    assert "measured fp32 FMA peak" in out and bench.cpu_name() in out
    cases = [r["case"] for r in result["rows"]]
    assert len(cases) == 6 and cases[-1] == "lenet5 train step b64"
    for r in result["rows"]:
        assert r["cnncore"] > 0 and r["path"]
        if r["unit"] == "GFLOP/s":
            assert 0 < r["peak_pct"] < 1000
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert all(r["ratio"] > 0 and r["torch"] > 0 for r in result["rows"])
    path = tmp_path / "bench.json"
    bench.write_json(result, path)
    back = json.loads(path.read_text())
    assert back["cpu"] == bench.cpu_name() and len(back["rows"]) == 6


def test_cli_bench_rejects_bad_arguments():
    for args in (["--threads", "0"], ["--repeats", "0"]):
        res = subprocess.run([sys.executable, "-m", "cnncore", "bench", *args],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().count("\n") == 0 and "must be >= 1" in res.stderr
