"""scripts/bench.py: its machinery on tiny sizes. No timing is asserted: speed targets live
in the figures the benchmark prints, never in tests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from conftest import ROOT

BENCH = ROOT / "scripts" / "bench.py"
KEYS = {
    "small_reglab_over_bare",
    "big_reglab_over_bare",
    "dataloader_over_reglab",
    "startup_s",
    "small_bare_epoch_s",
    "small_reglab_epoch_s",
    "small_dataloader_epoch_s",
    "big_bare_epoch_s",
    "big_reglab_epoch_s",
    "small_reglab_rss_mb",
    "startup_rss_mb",
    "sweep_s",
    "load_start",
    "load_end",
}


def _bench_module():
    spec = importlib.util.spec_from_file_location("reglab_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_measures_every_path_and_ends_with_one_json_line(tmp_path, data_dir):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--in-process", "--json-out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert json.loads(out.read_text()) == figures
    for key in KEYS - {"sweep_s", "load_start", "load_end"}:
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["sweep_s"] is None and figures["smoke"] is True
    assert figures["n_train_small"] == figures["n_train_big"] == 2000
    assert "reglab-train start → first step" in result.stdout


def test_a_sweep_whose_experiment_does_not_exist_is_skipped_with_a_reason(tmp_path):
    bench = _bench_module()
    args = bench.parse_args(["--sweep", "no_such_experiment"])
    outcome = bench.measure_sweep(args.sweep, tmp_path, args, {})
    assert "conf/experiment/no_such_experiment.yaml does not exist" in outcome["skipped"]


def test_smoke_settings_are_tiny_and_skip_the_sweep():
    args = _bench_module().parse_args(["--smoke"])
    assert (args.epochs, args.big_epochs, args.dl_epochs, args.warmup) == (1, 1, 1, 0)
    assert args.small_subset == args.big_subset == 2000
    assert args.sweep == "none" and args.threads == 1
