"""The bench's printed tables (rich): per-step cost, bytes and floor, sweeps, targets."""

from __future__ import annotations

from typing import Any

PHASES = ("startup", "data", "train", "eval", "write")  # reglab.timing.PHASES
PHASE_NAMES = ("start-up", "data", "train", "eval", "write")


def targets(threads: int) -> dict[str, tuple[float, str]]:
    """figure: (limit, "max" = at most / "min" = at least); issue 19's, for ``threads``."""
    k16 = (0.4, 0.4) if threads >= 2 else (0.56, 0.42)  # 1 thread: no worse than before
    return {
        "small_reglab_over_lightning": (1.15, "max"),
        "bn_reglab_over_lightning": (1.15, "max"),
        "small_direct_over_lightning": (1.15, "max"),
        "bn_direct_over_lightning": (1.15, "max"),
        "members_small_K16_over_bare": (k16[0], "max"),
        "members_bn_K16_over_bare": (k16[1], "max"),
        "big_reglab_over_bare": (1.05, "max"),
        "dataloader_over_reglab": (8.0, "min"),
        "startup_s": (5.0, "max"),
        "sweeps_speedup": (1.06, "min"),  # stacked ÷ joblib before the redesign: 1.06–1.11
        "fig9a_over_floor": (1.5, "max"),
    }


def _met(value: float | None, target: tuple[float, str] | None) -> str:
    if value is None or target is None:
        return fmt(value)
    limit, kind = target
    ok = value <= limit if kind == "max" else value >= limit
    return fmt(value) if ok else f"[red]{fmt(value)} ✗[/]"  # ✗: seen in logs too


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def step_table(rows: list[dict], cuda: bool):
    """One row per (model, arm, K): time per step, per member, and per member ÷ bare."""
    from rich.table import Table

    table = Table(
        title="time per optimizer step (warm-up left out); ÷ bare: per member",
        caption="ms/step: the best of 5 blocks of the timed steps (a neighbour's burst "
        "slows some blocks); mean: all of them",
    )
    cols = ["model", "arm", "K", "steps", "ms/step", "mean", "ms/member", "÷ bare", "CPU ÷ bare"]
    cols.append("RSS MB")
    cols.append("load")
    if cuda:
        cols += ["MB/step", "floor ms", "÷ floor", "TFLOP/s"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "arm") else "right")
    bare = {r["model"]: r for r in rows if r["arm"] == "bare"}
    for r in rows:
        b, k = bare.get(r["model"]), r["members"]
        per = r["step_s"] / k
        cells = [
            r["model"],
            r["arm"],
            str(k),
            str(r["steps"]),
            fmt(1000 * r["step_s"]),
            fmt(1000 * r.get("mean_step_s", r["step_s"])),
            fmt(1000 * per),
            fmt(per / b["step_s"]) if b else "—",
            fmt(r["cpu_s"] / k / b["cpu_s"]) if b and b["cpu_s"] else "—",
            fmt(r.get("peak_rss_mb"), 0),
            fmt(r.get("load_before"), 2),
        ]
        if cuda:
            tflops = r["flops"] / r["step_s"] / 1e12 if r.get("flops") else None
            cells += [
                fmt(r["bytes"]["total"] / 1e6, 1) if r.get("bytes") else "—",
                fmt(1000 * r["floor_s"]) if r.get("floor_s") else "—",
                fmt(r.get("over_floor"), 2),
                fmt(tflops, 1),
            ]
        table.add_row(*cells)
    return table


def sweeps_table(sweeps: dict, args):
    from rich.table import Table

    table = Table(
        title="quick sweeps through the real CLI, launcher=joblib vs launcher=stacked",
        caption=f"joblib: {' '.join(args.joblib_args)}; stacked: {' '.join(args.stacked_args)}; "
        "agree: |Δ test error| ≤ max(0.1, s.d. of the setting's seeds / 4)",
    )
    for col in ("experiment", "jobs", "joblib s", "stacked s", "× faster", "max |Δ|", "agree"):
        table.add_column(col, justify="left" if col == "experiment" else "right")
    for name, r in [*sweeps["experiments"].items(), ("all four", sweeps["all"])]:
        table.add_row(
            name,
            str(r["jobs"]),
            fmt(r["joblib_s"], 1),
            fmt(r["stacked_s"], 1),
            fmt(r["speedup"], 2),
            fmt(r["max_abs_diff"], 2),
            f"{r['agree']}/{r['jobs']}",
        )
    return table


def ratios_table(figures: dict[str, Any], members: list[int]):
    """Issue 19's speed figures side by side: reglab at K = 1 over Lightning's floor and over
    the bare loop, each stack's per-member step over the bare loop (✗: target missed)."""
    from rich.table import Table

    goal = targets(figures.get("threads", 1))
    k16 = f"≤ {goal['members_small_K16_over_bare'][0]:g} small, "
    k16 += f"{goal['members_bn_K16_over_bare'][0]:g} bn"
    table = Table(title="step time ratios (through the Trainer; per member: ms/step ÷ K)")
    cols = ["model", "K=1 ÷ Lightning floor (≤ 1.15)", "vmap_solo=false ÷ floor"]
    cols.append("Lightning ÷ bare")
    cols.append("K=1 ÷ bare (big ≤ 1.05)")
    stacks = [k for k in members if k > 1]
    cols += [f"K={k} per member ÷ bare" + (f" ({k16})" if k == 16 else "") for k in stacks]
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    rows = [(model, "reglab", "members") for model in ("small", "bn", "big")]
    rows += [(model, "against", "against") for model in ("small", "bn", "big")]  # --against
    for model, arm, prefix in rows:
        cells = [
            _met(
                figures.get(f"{model}_{arm}_over_lightning"),
                goal.get(f"{model}_reglab_over_lightning"),
            ),
            _met(
                figures.get(f"{model}_direct_over_lightning") if arm == "reglab" else None,
                goal.get(f"{model}_direct_over_lightning"),
            ),
            fmt(figures.get(f"{model}_lightning_over_bare")),
            _met(figures.get(f"{model}_{arm}_over_bare"), goal.get(f"{model}_reglab_over_bare")),
        ]
        for k in stacks:
            key = f"{prefix}_{model}_K{k}_over_bare"
            cells.append(_met(figures.get(key), goal.get(f"members_{model}_K{k}_over_bare")))
        if any(c != "—" for c in cells[:1] + cells[3:]):
            table.add_row(model if arm == "reglab" else f"{model} (--against)", *cells)
    return table


def phases_table(sweeps: dict):
    """Where each sweep's wall time went: seconds per phase, summed over its stacks
    (``summary.json``'s ``timing``, :mod:`reglab.timing`), and their share of the
    process time (wall × worker processes); ``other``: the rest (the launcher's own
    composing and planning, waiting for the last stack, process ends)."""
    from rich.table import Table

    table = Table(
        title="where a sweep's time goes: s (% of wall × processes), summed over its stacks",
        caption="start-up: process start (or previous stack's end) → first step, but data; "
        "train: steps with Lightning's loop; write: checkpoints, summaries, model.pt, loggers",
    )
    cols = ["experiment", "launcher", "stacks", "procs", "wall s", *PHASE_NAMES, "other"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("experiment", "launcher") else "right")
    for name, r in sweeps["experiments"].items():
        for arm in ("stacked", "joblib"):
            ph = r.get(f"{arm}_phases")
            if not ph or not ph["stacks"]:
                continue
            total = ph["process_s"] or 1.0
            cells = [f"{ph[f'{p}_s']:.1f} ({100 * ph[f'{p}_s'] / total:.0f} %)" for p in PHASES]
            other = ph["other_s"]
            cells.append(f"{other:.1f} ({100 * other / total:.0f} %)")
            table.add_row(name, arm, str(ph["stacks"]), str(ph["procs"]),
                          fmt(r[f"{arm}_s"], 1), *cells)  # fmt: skip
    return table


def baseline_table(figures: dict[str, Any], baseline: dict[str, Any], sweeps: dict | None):
    """An earlier run's figures (``--baseline``) beside these: before, now, now ÷ before;
    and each launcher's summaries against the baseline's (the agreement rule)."""
    from rich.table import Table

    table = Table(title="against the baseline (--baseline): before, now, now ÷ before")
    for col in ("figure", "before", "now", "now ÷ before"):
        table.add_column(col, justify="left" if col == "figure" else "right")

    def wanted(key: str) -> bool:  # times and ratios, not settings or the load
        timed = key.endswith(("_s", "_ms", "_h")) and not key.startswith("load")
        return timed or any(w in key for w in ("_over_", "speedup", "max_abs_diff"))

    for key, now in figures.items():
        before = baseline.get(key)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (now, before))
        if numbers and wanted(key):
            table.add_row(key, fmt(before), fmt(now), fmt(now / before if before else None))
    for name, r in ((sweeps or {}).get("experiments") or {}).items():
        for arm in ("joblib", "stacked"):
            a = r.get(f"{arm}_vs_baseline")
            if a:
                table.add_row(f"{name} {arm}: summaries agree with the baseline's",
                              f"{a['agree']}/{a['jobs']}", f"max |Δ| {fmt(a['max_abs_diff'], 2)}",
                              "")  # fmt: skip
    return table


def targets_table(figures: dict[str, Any]):
    from rich.table import Table

    table = Table(title="targets (figures to track, not pass/fail gates)")
    for col in ("figure", "measured", "target", "met"):
        table.add_column(col)
    for name, (limit, kind) in targets(figures.get("threads", 1)).items():
        value = figures.get(name)
        if value is None:
            continue
        met = value <= limit if kind == "max" else value >= limit
        sign = "≤" if kind == "max" else "≥"
        table.add_row(name, fmt(value), f"{sign} {limit:g}", "yes" if met else "[red]no[/]")
    return table


def report(rows: list[dict], figures: dict, context: dict, args) -> None:
    from rich.console import Console

    console = Console(width=max(130, Console().width))
    console.print(
        f"[bold]reglab bench[/] — {context['cpu']}, {args.threads} torch threads, device "
        f"{args.device}, torch {context['torch']}; load {context['uptime_start']}"
    )
    if rows:
        console.print(step_table(rows, args.device.startswith("cuda")))
        console.print(ratios_table(figures, args.members))
        console.print(
            f"reglab: run_stack on K jobs differing in seed, logger=[], no progress bar, "
            f"no evaluation or checkpoint in the timed steps; data.train_size="
            f"{args.train_size} (fig9a: the paper's); bare: the solo model in a plain loop"
        )
    startup = context.get("startup")
    if startup:
        console.print(
            f"reglab-train start → first step: [bold]{startup['startup_s']:.2f} s[/] "
            f"(interpreter {startup['interpreter_s']:.2f} + imports {startup['imports_s']:.2f}"
            f" + config {startup['config_s']:.2f} + data, stack → step "
            f"{startup['data_to_first_step_s']:.2f}); peak RSS {fmt(startup['peak_rss_mb'], 0)} MB"
        )
    fig9a = context.get("fig9a")
    if fig9a:
        p = fig9a["projection"]
        console.print(
            f"Fig. 9a paper scale, {fig9a['members']} members in one stack: "
            f"{1000 * fig9a['step_s']:.2f} ms/step, evaluation {fig9a['eval_s']:.2f} s, "
            f"checkpoint {fig9a['ckpt_s']:.2f} s → {fig9a['updates']:,} updates: "
            f"[bold]{p['total_h']:.2f} h[/] (steps {p['steps_s'] / 3600:.2f} h, "
            f"{p['evals_s'] / 3600:.2f} h evaluations, {p['ckpts_s'] / 3600:.2f} h checkpoints)"
        )
    if context.get("sweeps"):
        console.print(sweeps_table(context["sweeps"], args))
        console.print(phases_table(context["sweeps"]))
    if context.get("baseline") is not None:
        console.print(baseline_table(figures, context["baseline"], context.get("sweeps")))
    console.print(targets_table(figures))
    console.print(f"uptime at end: {context['uptime_end']}")
