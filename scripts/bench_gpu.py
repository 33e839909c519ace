"""Bytes a stacked step moves, the floor time they imply, and the Fig. 9a projection.

The byte count of one optimizer step of K members, each member's tensors in fp32
(4 bytes), P parameters, S optimizer-state tensors of P values (SGD with momentum: 1,
Adam: 2), B examples, A activation values per example (every layer's output: linear,
batchnorm, nonlinearity, dropout) and I input values per example:

* weights: 4 accesses of 4·P bytes: read by the forward pass, read by the backward pass
  (the inputs' gradients), read and written by the update;
* gradients: 2 accesses of 4·P: written by the backward pass, read by the update;
* optimizer state: 2 accesses of 4·P per state tensor: read and written by the update;
* activations: 4 accesses of 4·B·A: written by the forward pass, read by the backward
  pass, their gradient written and read; the input 2 accesses of 4·B·I (forward, and the
  first layer's weight gradient). A counts every layer's output but views (flatten).

That is the traffic of an ideal (fused) implementation; masks, losses and the batch gather
are left out. Floor = bytes / the device bandwidth, measured with a large ``copy_``
(read + write counted).
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FLOAT = 4


def step_bytes(
    params: int, state_tensors: int, activations: int, inputs: int, batch: int, members: int
) -> dict[str, int]:
    """Bytes one stacked step moves (see the module docstring), per part and in total."""
    parts = {
        "weights": 4 * FLOAT * params,
        "grads": 2 * FLOAT * params,
        "state": 2 * FLOAT * params * state_tensors,
        "activations": FLOAT * batch * (4 * activations + 2 * inputs),
    }
    per_member = sum(parts.values())
    return parts | {"per_member": per_member, "total": per_member * members}


def step_flops(matrix_params: int, batch: int, members: int) -> int:
    """Multiply-adds ×2 of forward (1×) and backward (2×) through the weight matrices."""
    return 6 * matrix_params * batch * members


def floor(total_bytes: int, step_s: float, bandwidth: float) -> dict[str, float]:
    """The time ``total_bytes`` take at ``bandwidth`` (bytes/s) and the measured step over it."""
    floor_s = total_bytes / bandwidth
    return {"bandwidth": bandwidth, "floor_s": floor_s, "over_floor": step_s / floor_s}


def measure_bandwidth(device: str, nbytes: int = 2**30, repeats: int = 10) -> float:
    """Bytes per second of ``copy_`` between two ``nbytes`` buffers (read + write)."""
    import torch

    src = torch.ones(nbytes // FLOAT, device=device)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):
        dst.copy_(src)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync()
    seconds = (time.perf_counter() - start) / repeats
    del src, dst
    return 2 * nbytes / seconds


def describe_stack(module, batch: int, extras: bool = False, runs=None) -> dict:
    """Sizes of a training :class:`~reglab.classifier.StackedClassifier` (per member) and
    its step's bytes; with ``extras``, the seconds of one evaluation of every member and of
    one checkpoint of every member (``runs``: its :class:`~reglab.callbacks.MemberRuns`)."""
    import torch
    from torch import nn

    net, k = module.net, module.num_members
    params = sum(p.numel() for p in net.parameters()) // k
    matrix = sum(p.numel() for p in net.parameters() if p.dim() >= 3) // k  # 2-d per member
    opt = module.optimizers().optimizer
    states = opt.state.values() if isinstance(opt.state, dict) else opt.state
    state_values = sum(t.numel() for st in states for t in st.values() if torch.is_tensor(t))
    state = state_values // (k * params)  # SGD with momentum: 1, Adam: 2

    outputs: list[int] = []  # every leaf layer's output (per member, inside vmap) but views

    def record(layer, inputs, output) -> None:
        if output is not inputs[0] and not isinstance(layer, nn.Flatten | nn.Identity):
            outputs.append(output.numel())

    leaves = [m for m in net.template.modules() if not list(m.children())]
    hooks = [layer.register_forward_hook(record) for layer in leaves]
    x = torch.zeros(k, batch, *module.data.input_shape, device=module.device)
    was_training = net.training
    try:
        with torch.no_grad():
            net.train()  # the training step's layers (dropout masks drawn)
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    activations, inputs = sum(outputs) // batch, x[0, 0].numel()
    found = {
        "params": params,
        "state_tensors": state,
        "activations": activations,
        "batch": batch,
        "bytes": step_bytes(params, state, activations, inputs, batch, k),
        "flops": step_flops(matrix, batch, k),
    }
    if extras and runs is not None:
        sync = torch.cuda.synchronize if module.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        runs._evaluate(list(range(k)))
        sync()
        found["eval_s"] = time.perf_counter() - start
        start = time.perf_counter()
        for i, m in enumerate(runs.members):
            m.save_checkpoint(module.member_state(i), module, {"best_val": runs.best_val[i]})
        found["ckpt_s"] = time.perf_counter() - start
    return found


def fig9a_jobs() -> tuple[list[str], list[list[str]]]:
    """Fig. 9a at paper scale: the base overrides and each of its jobs' sweep point."""
    exp = yaml.safe_load((ROOT / "conf/experiment/dropout_rate_fixed_n.yaml").read_text())
    seeds = str(yaml.safe_load((ROOT / "conf/scale/paper.yaml").read_text())["seeds"])
    ps = str(exp["hydra"]["sweeper"]["params"]["dropout.p_hidden"])
    jobs = [[f"dropout.p_hidden={p}", f"seed={s}"] for p in ps.split(",") for s in seeds.split(",")]
    return ["experiment=dropout_rate_fixed_n", "scale=paper"], jobs


def fig9a_schedule() -> dict[str, int]:
    """Updates, evaluation and checkpoint intervals of Fig. 9a at paper scale."""
    paper = yaml.safe_load((ROOT / "conf/scale/dropout_rate_fixed_n/paper.yaml").read_text())
    return {
        "updates": paper["trainer"]["max_steps"],
        "val_every": paper["trainer"]["val_check_interval"],
        "ckpt_every": paper["checkpoint"]["every_n_steps"],
    }


def project(
    step_s: float,
    eval_s: float,
    ckpt_s: float,
    updates: int,
    val_every: int,
    ckpt_every: int,
    fixed_s: float = 0.0,
) -> dict[str, float]:
    """Seconds for ``updates`` steps with an evaluation every ``val_every`` (and one more at
    the end, the final metrics) and a checkpoint every ``ckpt_every``, plus ``fixed_s``."""
    evals, ckpts = updates // val_every + 1, updates // ckpt_every
    parts = {
        "steps_s": updates * step_s,
        "evals_s": evals * eval_s,
        "ckpts_s": ckpts * ckpt_s,
        "fixed_s": fixed_s,
    }
    total = sum(parts.values())
    return parts | {"total_s": total, "total_h": total / 3600}


def slice_report(logs: Path, out: Path, steps: int, wall_s: float, rc: int) -> dict:
    """gpu_check.sh's Fig. 9a slice: its summaries, and the projected time of the whole run
    (the slice's wall time, plus the remaining updates, evaluations and checkpoints at the
    rates ``bench.py --only fig9a`` measured, when its JSON is in ``out``)."""
    import json
    import statistics

    summaries = [json.loads(p.read_text()) for p in logs.rglob("summary.json")]
    done = [s for s in summaries if s.get("status") == "completed"]
    schedule = fig9a_schedule()
    result: dict = {"steps": steps, "wall_s": wall_s, "rc": rc, "jobs": len(summaries)}
    result["completed"] = len(done)
    result["slice_rate_h"] = wall_s * schedule["updates"] / steps / 3600  # an upper bound
    if done:
        result["mean_test_error"] = statistics.fmean(s["metrics"]["test_error"] for s in done)
    bench = out / "bench_cuda.json"
    fig = json.loads(bench.read_text()) if bench.exists() else {}
    if fig.get("fig9a_step_ms") and fig.get("fig9a_eval_s") is not None:
        step_s = fig["fig9a_step_ms"] / 1000
        rest = schedule | {"updates": schedule["updates"] - steps}
        result["projection"] = project(
            step_s, fig["fig9a_eval_s"], fig["fig9a_ckpt_s"], **rest, fixed_s=wall_s
        )
    (out / "fig9a_slice.json").write_text(json.dumps(result) + "\n")
    total = result.get("projection", {}).get("total_h")
    print(
        f"Fig. 9a slice: {len(done)}/{len(summaries)} members completed {steps} updates in "
        f"{wall_s:.1f} s; 10^6 updates: {'—' if total is None else f'{total:.2f}'} h projected "
        f"(slice + bench rates), {result['slice_rate_h']:.2f} h at the slice's own rate"
    )
    return result


if __name__ == "__main__":  # python scripts/bench_gpu.py LOGS OUT STEPS WALL_S RC
    import sys

    logs_, out_, steps_, wall_, rc_ = sys.argv[1:6]
    slice_report(Path(logs_), Path(out_), int(steps_), float(wall_), int(rc_))
