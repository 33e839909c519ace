"""scripts/bench.py: its machinery on tiny sizes and its arithmetic. Nothing is timed here:
speed targets live in the figures the benchmark prints, never in tests."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from inprocess import run_main_ok

from reglab import timing

BENCH = ROOT / "scripts" / "bench.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("reglab_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts scripts/ on sys.path: bench_* import below
    return module


bench = _bench_module()
import bench_gpu  # noqa: E402
import bench_sweeps  # noqa: E402


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_smoke_run_prints_one_row_per_arm_and_stack_and_ends_with_one_json_line(tmp_path, data_dir):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--in-process", "--only", "members", "fig9a",
         "--json-out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == figures
    # the table: (small, bn) × (bare, lightning, reglab K=1, K=2, direct), then fig9a's stack
    rows = re.findall(r"^│ (\w+)\s+│ (\w+)\s+│ (\d+) │", result.stdout, re.M)
    per_model = [("bare", "1"), ("lightning", "1"), ("reglab", "1"), ("reglab", "2")]
    per_model.append(("direct", "1"))
    expected = [(m, a, k) for m in ("small", "bn") for a, k in per_model]
    assert rows == [*expected, ("fig9a", "reglab", "3")]
    assert "step time ratios" in result.stdout and "K=2 per member ÷ bare" in result.stdout
    for key in ("members_small_K2_over_bare", "members_bn_K2_over_bare",
                "small_reglab_over_lightning", "bn_reglab_over_lightning",
                "small_direct_over_lightning", "bn_direct_over_lightning",
                "fig9a_step_ms", "fig9a_projected_h", "fig9a_eval_s"):  # fmt: skip
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["smoke"] is True and figures["fig9a_members"] == 3
    # fig9a, shrunk: 784-32-32-32-10, dropout after each hidden ReLU, SGD with momentum
    params = (784 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 10 + 10)
    activations = 3 * (32 + 32 + 32) + 10  # fc, act, drop per hidden layer; the logits
    expected_bytes = bench_gpu.step_bytes(params, 1, activations, 784, 100, 3)["total"]
    assert figures["fig9a_reglab_K3_bytes"] == expected_bytes


def test_step_bytes_counts_weights_grads_state_and_activations():
    parts = bench_gpu.step_bytes(
        params=10, state_tensors=2, activations=5, inputs=3, batch=2, members=4
    )
    assert parts["weights"] == 4 * 4 * 10  # forward, backward, update read + write
    assert parts["grads"] == 2 * 4 * 10  # written by backward, read by the update
    assert parts["state"] == 2 * 2 * 4 * 10  # two state tensors, each read and written
    assert parts["activations"] == 4 * 2 * (4 * 5 + 2 * 3)
    assert parts["per_member"] == 160 + 80 + 160 + 208
    assert parts["total"] == 4 * parts["per_member"]


def test_fig9a_stack_moves_about_ten_and_a_half_gigabytes_a_step():
    """30 members of 784-2048³-10 (10,020,874 parameters each), SGD with momentum."""
    params = (784 * 2048 + 2048) + 2 * (2048 * 2048 + 2048) + (2048 * 10 + 10)
    assert params == 10_020_874
    parts = bench_gpu.step_bytes(params, 1, 3 * 3 * 2048 + 10, 784, 100, 30)
    assert parts["weights"] + parts["grads"] + parts["state"] == 8 * 4 * params
    assert parts["total"] == 30 * (8 * 4 * params + 4 * 100 * (4 * 18442 + 2 * 784))
    assert 10.4e9 < parts["total"] < 10.6e9
    floor = bench_gpu.floor(parts["total"], step_s=0.004, bandwidth=4.0e12)
    assert floor["floor_s"] == pytest.approx(parts["total"] / 4.0e12)
    assert floor["over_floor"] == pytest.approx(0.004 / floor["floor_s"])
    assert bench_gpu.step_flops(params - 2048 * 3 - 10, 100, 30) == 6 * 100 * 30 * 10_014_720


def test_projection_counts_steps_evaluations_and_checkpoints():
    p = bench_gpu.project(0.002, 3.0, 5.0, updates=10**6, val_every=10**4, ckpt_every=10**4)
    assert p["steps_s"] == pytest.approx(2000.0)
    assert p["evals_s"] == pytest.approx(101 * 3.0)  # every 10^4 updates, and the final one
    assert p["ckpts_s"] == pytest.approx(100 * 5.0)
    assert p["total_h"] == pytest.approx((2000 + 303 + 500) / 3600)


def test_fig9a_is_read_from_the_paper_scale_configs():
    overrides, jobs = bench_gpu.fig9a_jobs()
    assert overrides == ["experiment=dropout_rate_fixed_n", "scale=paper"]
    assert len(jobs) == 30 and ["dropout.p_hidden=0.1", "seed=2"] in jobs
    assert bench_gpu.fig9a_schedule() == {
        "updates": 1_000_000,
        "val_every": 10_000,
        "ckpt_every": 10_000,
    }


def _summary(error):
    return {"status": "completed", "metrics": {"test_error": error}}


def test_sweep_agreement_allows_a_tenth_of_a_point_or_a_quarter_of_the_seed_sd():
    joblib = {
        "a=1,seed=0": _summary(2.0),
        "a=1,seed=1": _summary(2.1),  # s.d. 0.07: 0.1 points allowed
        "a=2,seed=0": _summary(10.0),
        "a=2,seed=1": _summary(14.0),  # s.d. 2.83: 0.71 allowed
        "a=3,seed=0": _summary(5.0),
    }
    stacked = {
        "a=1,seed=0": _summary(2.05),
        "a=1,seed=1": _summary(2.3),  # 0.2 off: disagrees
        "a=2,seed=0": _summary(10.6),
        "a=2,seed=1": _summary(14.0),
        "a=3,seed=0": {"status": "diverged", "metrics": {}},
    }
    result = bench_sweeps.agreement(joblib, stacked)
    assert (result["jobs"], result["agree"]) == (4, 3)
    assert result["max_abs_diff"] == pytest.approx(0.6)
    assert result["worst_job"] == "a=2,seed=0" and result["missing"] == ["a=3,seed=0"]
    assert bench_sweeps.setting("corruption.q=0.2,arm=l2,seed=1") == "corruption.q=0.2,arm=l2"


def test_sweep_commands_run_the_real_cli_with_each_launcher():
    args = bench.parse_args(["--only", "sweeps", "--stacked-args", "launcher.n_procs=1"])
    stacked = bench_sweeps.command("penalties", "stacked", args)
    assert stacked[1:] == [
        "-m", "reglab.train", "-m", "experiment=penalties", "scale=quick", "launcher=stacked",
        "launcher.n_procs=1",
    ]  # fmt: skip
    joblib = bench_sweeps.command("penalties", "joblib", args)
    assert "launcher=joblib" in joblib and "launcher.threads_per_job=1" in joblib
    auto = ["launcher.n_procs=2", "launcher.threads_per_proc=1", "launcher.max_members=auto"]
    args = bench.parse_args(["--only", "sweeps", "--stacked-args", *auto])
    assert bench_sweeps.command("label_corruption", "stacked", args, jobs=36)[-3:] == [
        "launcher.n_procs=2", "launcher.threads_per_proc=1", "launcher.max_members=18",
    ]  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_device_cuda_without_cuda_fails_with_one_line():
    result = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cuda", "--only", "members"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: --device cuda: no CUDA device")


def test_against_an_engine_without_its_conf_fails_with_one_line(tmp_path, capsys):
    (tmp_path / "src" / "reglab").mkdir(parents=True)  # a package, but no conf/ beside it
    with pytest.raises(SystemExit) as stop:
        bench.main(["--only", "members", "--against", str(tmp_path / "src")])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bench: --against {tmp_path / 'src'}: no ")
    assert str(tmp_path / "conf") in lines[0]


def test_smoke_settings_are_tiny_and_skip_the_sweeps():
    args = bench.parse_args(["--smoke", "--only", "members", "sweeps"])
    assert (args.steps, args.warmup, args.members, args.train_size) == (4, 1, [1, 2], 500)
    assert args.only == ["members"] and args.threads == 1
    assert bench.parse_args(["--device", "cuda"]).only == ["members", "fig9a"]


def test_against_adds_another_engines_reglab_arm_beside_this_ones(tmp_path):
    args = bench.parse_args(
        ["--only", "members", "--against", str(tmp_path), "--members", "1", "4"]
    )
    twins = [s for s in bench.plan(args) if s["arm"] == "against"]
    assert [(s["model"], s["members"], s["src"]) for s in twins] == [
        (m, [1, 4], str(tmp_path)) for m in ("small", "bn")
    ]
    rows = [{"model": "bn", "arm": a, "members": k, "step_s": t, "cpu_s": t, "peak_rss_mb": 1}
            for a, k, t in (("bare", 1, 1.0), ("lightning", 1, 1.5), ("against", 1, 3.0),
                            ("against", 4, 2.0), ("against", 1, 2.4))]  # fmt: skip
    best = bench.best_rows(rows)  # rounds: each arm's best, in first-seen order
    assert [(r["arm"], r["members"], r["step_s"]) for r in best][2:] == [
        ("against", 1, 2.4),
        ("against", 4, 2.0),
    ]
    figures = bench.figures_of(best, {})
    assert figures["bn_against_over_lightning"] == pytest.approx(1.6)
    assert figures["against_bn_K4_over_bare"] == pytest.approx(0.5)
    assert "members_bn_K4_over_bare" not in figures  # this engine's figures stay its own


def test_best_of_blocks_is_the_fastest_blocks_time_per_step():
    clock = bench.bench_arms.Clock("cpu")
    clock.start()
    clock.marks = [
        0.0,
        *[0.1 * (i + 1) for i in range(5)],
        *[0.5 + 0.05 * (i + 1) for i in range(5)],
    ]
    clock.wall, clock.cpu = 0.75, 0.75
    assert clock.best_step_s(10) == pytest.approx(0.05)  # blocks of 2 steps: 0.2 … 0.1
    assert clock.row({"arm": "x", "model": "y", "steps": 10})["mean_step_s"] == 0.075


def test_targets_follow_the_thread_count():
    two, one = bench.bench_report.targets(2), bench.bench_report.targets(1)
    assert two["members_small_K16_over_bare"] == two["members_bn_K16_over_bare"] == (0.4, "max")
    assert one["members_small_K16_over_bare"][0] == 0.56
    assert one["members_bn_K16_over_bare"][0] == 0.42
    assert two["small_reglab_over_lightning"] == (1.15, "max")


def test_phase_clock_nests_and_hands_each_second_to_one_phase(monkeypatch):
    now = iter(range(100, 200))
    monkeypatch.setattr(timing.time, "time", lambda: float(next(now)))
    clock = timing.PhaseClock(origin=90.0)
    monkeypatch.setattr(timing, "_clock", clock)
    timing.to("train")  # at 100: 10 s of start-up
    with timing.phase("eval"), timing.phase("write"):  # eval from 101, write from 102
        pass  # write ends at 103, eval at 104: back in train until the snapshot at 105
    assert timing.snapshot() == {"startup_s": 10.0, "data_s": 0.0, "train_s": 2.0,
                                 "eval_s": 2.0, "write_s": 1.0}  # fmt: skip
    monkeypatch.setattr(timing, "_clock", None)
    with timing.phase("eval"):  # no stack: nothing recorded, nothing fails
        assert timing.snapshot() is None


def test_a_run_records_where_its_time_went(tmp_path, data_dir):
    summary = run_main_ok(
        "data=digits", "trainer.max_steps=3", run_dir=tmp_path / "run", cwd=tmp_path
    )
    seconds = summary["timing"]
    assert set(seconds) == {f"{p}_s" for p in timing.PHASES}
    assert min(seconds.values()) >= 0 and seconds["train_s"] > 0 and seconds["eval_s"] > 0
    after_start = sum(v for k, v in seconds.items() if k != "startup_s")
    assert after_start <= summary["wall_time_s"] + 0.01
    found = {"run": summary}
    phases = bench_sweeps.phases(found, wall_s=60.0, procs=2)
    assert (phases["stacks"], phases["procs"]) == (1, 1)  # one stack: one process at most
    assert phases["train_s"] == seconds["train_s"]


def test_sweep_phases_sum_each_stacks_latest_timing():
    def t(startup, train):
        return {"startup_s": startup, "data_s": 1.0, "train_s": train, "eval_s": 0.5,
                "write_s": 0.1}  # fmt: skip

    found = {
        "a,seed=0": {"stack": {"id": "s1", "size": 2}, "timing": t(2.0, 5.0)},
        "a,seed=1": {"stack": {"id": "s1", "size": 2}, "timing": t(2.0, 7.0)},  # ended later
        "b,seed=0": {"stack": {"id": "s2", "size": 1}, "timing": t(3.0, 4.0)},
        "c,seed=0": {"status": "failed", "error": "bad config"},  # no stack trained it
    }
    phases = bench_sweeps.phases(found, wall_s=10.0, procs=2)
    assert (phases["stacks"], phases["procs"], phases["process_s"]) == (2, 2, 20.0)
    assert (phases["startup_s"], phases["data_s"], phases["train_s"]) == (5.0, 2.0, 11.0)
    assert phases["other_s"] == pytest.approx(20.0 - (5.0 + 2.0 + 11.0 + 1.0 + 0.2))
    args = bench.parse_args(["--only", "sweeps", "--stacked-args", "launcher.n_procs=3"])
    assert bench_sweeps._procs("stacked", args) == 3
    assert bench_sweeps._procs("joblib", args) == int(args.joblib_args[0].split("=")[1])
