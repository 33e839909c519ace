"""Hydra launchers that train a sweep's compatible jobs together, as stacks.

Hydra's sweeper hands :meth:`StackedLauncher.launch` the overrides of every job. Each
job's config is composed and its folder prepared as Hydra's ``run_job`` does (folder from
``hydra.sweep.dir``/``hydra.sweep.subdir``, ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml``); :func:`reglab.stacking.plan_stacks` groups the jobs into stacks and
the engine's ``reglab.run.run_stack`` trains each stack (reglab's task function, which
trains one job, is not called). One :class:`~hydra.core.utils.JobReturn` per job comes
back, in order: status COMPLETED with the test error, or None for a job that failed
(recorded in its ``summary.json``, as reglab's sweeps record failures); FAILED only for a
job whose whole stack crashed, which Hydra reports after all stacks ran.

Members of a stack share one process: each job's config is resolved (its
``${hydra:runtime.output_dir}`` paths included) before it goes to the engine, the
working directory stays the launching one (reglab sets ``hydra.job.chdir=false``), and
Hydra's per-job log file is left to the engine, which writes each member's own logs.

No ``from __future__ import annotations``: see config.py (Member is a dataclass).
"""

import copy
import importlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.reglab_stacked_launcher import execution
from reglab.jobs import job_key
from reglab.progress import quiet_job_console
from reglab.resolvers import register
from reglab.stacking import format_bytes, member_work, plan_stacks, stack_bytes
from reglab.summary import COMPLETED, failed_summary

log = logging.getLogger(__name__)

#: The module with ``Job`` and ``run_stack`` (imported when stacks are trained).
ENGINE = "reglab.run"


@dataclass
class Member:
    """One job of the sweep, composed."""

    idx: int
    overrides: list[str]
    config: DictConfig  # the job's config with its hydra node (what run_job gets)
    task_cfg: DictConfig  # without the hydra node, unresolved: .hydra/config.yaml
    hydra_cfg: DictConfig
    out_dir: Path
    choices: dict[str, Any]
    name: list[str]  # the overrides its folder is named from
    resolved: dict | None = None  # task_cfg resolved; None if it is invalid
    error: str | None = None  # why it cannot run (a bad value), or None
    job: Any = field(default=None, repr=False)  # the engine's Job


class StackedLauncher(Launcher):
    """``hydra/launcher=reglab_stacked``: stacks in this process or in worker processes."""

    def __init__(
        self,
        max_members: int = 64,
        n_procs: int | None = None,
        memory_gb: float | None = None,
        dry_run: bool = False,
        threads_per_proc: int | None = None,
        **params: Any,
    ) -> None:
        self.max_members = int(max_members)
        self.requested_procs = None if n_procs is None else max(1, int(n_procs))
        self.n_procs = self.requested_procs or 1
        self.memory_gb = None if memory_gb is None else float(memory_gb)
        self.dry_run = bool(dry_run)
        self.threads_per_proc = None if threads_per_proc is None else int(threads_per_proc)
        self.params = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in params.items()
        }
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        register()  # it composes each job's config (reglab's resolvers)

    # -- launch ------------------------------------------------------------------------

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        original = HydraConfig.instance().cfg
        try:
            members = [
                self.compose(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)
            ]
        finally:
            HydraConfig.instance().cfg = original
        valid = [m for m in members if m.error is None]
        configs = [m.resolved for m in valid]
        self.n_procs = self.procs(configs)
        budget, device = self.budget(configs)
        plan = plan_stacks(configs, self.max_members, budget, self.n_procs) if valid else []
        stacks = [[valid[i] for i in part] for part in plan]
        lines = self.plan_lines(stacks, members, budget, device)
        if self.dry_run:
            print("\n".join(lines), flush=True)
            return [self.job_return(m, (None, None)) for m in members]
        for line in lines:
            log.info(line)
        outcomes: dict[int, execution.Outcome] = {}
        for m in members:
            self.save_hydra_files(m)
            if m.error is not None:
                outcomes[m.idx] = (self.record_invalid(m), None)
        if stacks:
            quiet_job_console()  # members' own lines go to their train.log (reglab.progress)
            engine = importlib.import_module(ENGINE)
            for m in valid:
                cfg = OmegaConf.create(m.resolved)
                OmegaConf.set_struct(cfg, True)
                m.job = engine.Job(
                    cfg=cfg, out_dir=m.out_dir, overrides=list(m.overrides), choices=m.choices
                )
            started = time.monotonic()
            outcomes |= self.execute(stacks, engine.run_stack)
            log.info("%d stacks done in %.0f s", len(stacks), time.monotonic() - started)
        returns = [self.job_return(m, outcomes[m.idx]) for m in members]
        for m, ret in zip(members, returns, strict=True):
            with self.as_job(m):
                self.hydra_context.callbacks.on_job_end(config=m.config, job_return=ret)
        return returns

    def compose(self, idx: int, overrides: list[str]) -> Member:
        """The job's config and folder, as Hydra's BasicLauncher and ``run_job`` make them."""
        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = idx
            config.hydra.job.num = idx
        HydraConfig.instance().set_config(config)
        out_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        subdir = OmegaConf.select(config, "hydra.sweep.subdir")
        if subdir is not None:
            out_dir = out_dir / str(subdir)
        out_dir = Path(os.path.abspath(out_dir))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(out_dir)
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
        excluded = set(
            OmegaConf.select(config, "hydra.job.config.override_dirname.exclude_keys") or []
        )
        task_overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task)]
        choices = OmegaConf.to_container(config.hydra.runtime.choices)
        member = Member(
            idx=idx,
            overrides=task_overrides,
            config=config,
            task_cfg=task_cfg,
            hydra_cfg=hydra_cfg,
            out_dir=out_dir,
            choices={k: v for k, v in choices.items() if not str(k).startswith("hydra")},
            name=sorted(job_key(task_overrides, excluded)),
        )
        from reglab.validation import ConfigError, added_keys, validate

        try:  # as reglab.train validates a single run: the `+` keys and groups included
            validate(task_cfg, added_keys(task_overrides), choices)
            member.resolved = OmegaConf.to_container(task_cfg, resolve=True)
        except ConfigError as error:
            member.error = str(error)
        except Exception as error:  # an interpolation that does not resolve, and the like
            member.error = str(error).splitlines()[0]
        return member

    def save_hydra_files(self, m: Member) -> None:
        """``.hydra/{config,hydra,overrides}.yaml``, as Hydra's ``run_job`` writes them."""
        m.out_dir.mkdir(parents=True, exist_ok=True)
        subdir = m.config.hydra.output_subdir
        if subdir is not None:
            folder = m.out_dir / str(subdir)
            folder.mkdir(parents=True, exist_ok=True)
            for name, cfg in (
                ("config.yaml", m.task_cfg),
                ("hydra.yaml", m.hydra_cfg),
                ("overrides.yaml", m.config.hydra.overrides.task),
            ):  # unresolved, as Hydra's run_job writes them
                (folder / name).write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")

    @staticmethod
    def record_invalid(m: Member) -> dict:
        """A job whose config reglab cannot run: its summary says why (as reglab.train's)."""
        summary = failed_summary(m.out_dir, m.error, m.overrides, m.choices)
        log.error("job %s: %s", m.out_dir.name, m.error)
        return summary

    # -- memory and the plan -----------------------------------------------------------

    def procs(self, configs: Sequence[dict]) -> int:
        """Stacks at a time: ``n_procs``, else one per core on a CPU (small nets run faster
        as one single-threaded stack per core than as one stack on all cores; README,
        "Stacked training") and one on a GPU. The plan makes at least that many stacks."""
        if self.requested_procs is not None:
            return self.requested_procs
        return 1 if execution.on_gpu(configs) else max(1, os.cpu_count() or 1)

    def budget(self, configs: Sequence[dict]) -> tuple[int | None, str]:
        """Bytes each stack may use (None: no limit) and the device they are counted on."""
        device = "gpu" if execution.on_gpu(configs) else "cpu"
        if self.memory_gb is not None:
            return int(self.memory_gb * 2**30), device
        if not configs:
            return None, device
        return execution.default_budget(configs, self.n_procs)

    def plan_lines(
        self, stacks: list[list[Member]], members: list[Member], budget: int | None, device: str
    ) -> list[str]:
        """One line for the plan, one per stack (size, members, estimate), one per bad job."""
        invalid = [m for m in members if m.error is not None]
        limit = "no memory limit" if budget is None else f"{format_bytes(budget)} per stack"
        head = (
            f"{'dry run: ' if self.dry_run else ''}{len(members)} jobs in {len(stacks)} "
            f"stacks (max_members={self.max_members}, {limit} on {device})"
        )
        if invalid:
            head += f"; {len(invalid)} with an invalid config"
        lines = [head]
        for k, stack in enumerate(stacks, 1):
            common = set.intersection(*(set(m.name) for m in stack))
            shared = ",".join(sorted(common))
            names = " · ".join(
                ",".join(o for o in m.name if o not in common) or m.out_dir.name for m in stack
            )
            estimate = format_bytes(stack_bytes([m.resolved for m in stack]))
            line = f"stack {k}/{len(stacks)}: {len(stack)} members, ~{estimate}"
            line += f" [{shared}]" if shared and len(stack) > 1 else ""
            lines.append(f"{line}: {names}")
        lines += [f"invalid: {m.out_dir.name}: {m.error}" for m in invalid]
        return lines

    # -- training ----------------------------------------------------------------------

    def execute(
        self, stacks: list[list[Member]], run_stack: execution.RunStack
    ) -> dict[int, execution.Outcome]:
        """Train the stacks: here one after another, or in ``n_procs`` spawned processes."""
        outcomes: dict[int, execution.Outcome] = {}
        if self.n_procs == 1 or len(stacks) == 1:
            if self.threads_per_proc:
                import torch

                torch.set_num_threads(self.threads_per_proc)
            for k, stack in enumerate(stacks, 1):
                self.job_start(stack)
                log.info("stack %d/%d: %d members", k, len(stacks), len(stack))
                results = execution.train_stack(run_stack, [m.job for m in stack])
                outcomes |= {m.idx: r for m, r in zip(stack, results, strict=True)}
            return outcomes
        threads = self.threads_per_proc or max(1, (os.cpu_count() or 1) // self.n_procs)
        with ProcessPoolExecutor(
            max_workers=min(self.n_procs, len(stacks)),
            mp_context=get_context("spawn"),
            initializer=execution.init_worker,
            initargs=(threads,),
        ) as pool:
            futures = {}
            costliest_first = sorted(  # as plan_stacks balanced them
                range(len(stacks)), key=lambda k: -sum(member_work(m.resolved) for m in stacks[k])
            )
            for k in costliest_first:
                stack = stacks[k]
                self.job_start(stack)
                futures[pool.submit(execution.work, run_stack, [m.job for m in stack])] = k
            for done, future in enumerate(as_completed(futures), 1):
                stack = stacks[futures[future]]
                outcomes |= self.collect(stack, future.result)
                log.info("stacks done: %d/%d", done, len(stacks))
        return outcomes

    @staticmethod
    def collect(stack: list[Member], result: Any) -> dict[int, execution.Outcome]:
        """A stack's outcomes from ``result()``; if it raises (the worker or the SLURM job
        died), each member's summary records the crash."""
        try:
            results = result()
            if len(results) != len(stack):
                raise RuntimeError(f"{len(results)} results for a stack of {len(stack)}")
        except Exception as error:
            log.error("a stack of %d members was lost: %s", len(stack), error)
            results = [execution.crashed(m.job, error) for m in stack]
        return {m.idx: r for m, r in zip(stack, results, strict=True)}

    def job_start(self, stack: list[Member]) -> None:
        assert self.hydra_context is not None
        for m in stack:
            with self.as_job(m):
                self.hydra_context.callbacks.on_job_start(
                    config=m.config, task_function=self.task_function
                )

    @contextmanager
    def as_job(self, m: Member) -> Iterator[None]:
        """HydraConfig set to this job's config, as while Hydra runs a job."""
        original = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(m.config)
        try:
            yield
        finally:
            HydraConfig.instance().cfg = original

    @staticmethod
    def job_return(m: Member, outcome: execution.Outcome) -> JobReturn:
        summary, error = outcome
        ret = JobReturn(
            overrides=m.overrides,
            cfg=m.task_cfg,
            hydra_cfg=m.hydra_cfg,
            working_dir=os.getcwd(),
            task_name=JobRuntime.instance().get("name"),
        )
        if error is not None:
            ret.status = JobStatus.FAILED
            ret.return_value = error
        else:
            ret.status = JobStatus.COMPLETED
            completed = summary is not None and summary.get("status") == COMPLETED
            ret.return_value = (
                (summary.get("metrics") or {}).get("test_error") if completed else None
            )
        return ret
