"""The bench's printed tables (rich): per-step cost, bytes and floor, sweeps, targets."""

from __future__ import annotations

from typing import Any

TARGETS = {  # figure: (limit, "max" = at most / "min" = at least)
    "members_small_K16_over_bare": (0.5, "max"),
    "members_bn_K16_over_bare": (0.5, "max"),
    "small_reglab_over_lightning": (1.15, "max"),
    "bn_reglab_over_lightning": (1.15, "max"),
    "big_reglab_over_bare": (1.05, "max"),
    "dataloader_over_reglab": (8.0, "min"),
    "startup_s": (5.0, "max"),
    "sweeps_speedup": (1.5, "min"),
    "fig9a_over_floor": (1.5, "max"),
}


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def step_table(rows: list[dict], cuda: bool):
    """One row per (model, arm, K): time per step, per member, and per member ÷ bare."""
    from rich.table import Table

    table = Table(title="time per optimizer step (warm-up left out); ÷ bare: per member")
    cols = ["model", "arm", "K", "steps", "ms/step", "ms/member", "÷ bare", "CPU ÷ bare", "RSS MB"]
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


def targets_table(figures: dict[str, Any]):
    from rich.table import Table

    table = Table(title="targets (figures to track, not pass/fail gates)")
    for col in ("figure", "measured", "target", "met"):
        table.add_column(col)
    for name, (limit, kind) in TARGETS.items():
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
    console.print(targets_table(figures))
    console.print(f"uptime at end: {context['uptime_end']}")
