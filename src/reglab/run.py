"""Runs: build a stack of members from their configs, train it, write each one's summary.

``run(cfg, out_dir)`` is one ``reglab-train`` run: a stack of one. ``run_stack(jobs)``
trains several compatible jobs of a sweep at once (``launcher=stacked``). Both take the
same path (:mod:`reglab.training`); a member's result does not depend on its stack.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from reglab import optim
from reglab.data import DataError, TensorDataModule, sources
from reglab.data.stack import StackData
from reglab.load import input_spec
from reglab.locks import JobLock, skipped
from reglab.member import Job, Member, read_checkpoint, resolved
from reglab.models.stack import MemberNet
from reglab.progress import bar_allowed, no_bar, quiet_job_console
from reglab.regularizers import Regularizer
from reglab.rerun import changed_settings, set_aside
from reglab.seeding import Stream, stream_seed
from reglab.summary import read_summary, write_json_atomic
from reglab.training import Interrupted, Stack
from reglab.validation import ConfigError, validate

log = logging.getLogger("reglab")

# Importing Lightning sets this, which turns torch.optim's per-step CUDA check into an
# uncached NVML query (~0.2 ms a step). reglab forks no DataLoader workers.
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)

#: torch.optim classes of conf/optimizer and their member-aware versions (reglab.optim).
MEMBER_OPTIMIZERS = {
    "torch.optim.SGD": optim.MemberSGD,
    "torch.optim.Adam": optim.MemberAdam,
    "torch.optim.AdamW": optim.MemberAdamW,
}
#: Optimizer settings that may differ between members (the rest must be equal).
PER_MEMBER_OPTIMIZER_KEYS = ("lr", "momentum", "weight_decay", "betas")


class RunFailed(RuntimeError):
    """Training ended without a result; ``status`` is ``diverged`` or ``interrupted``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class StackOutOfMemory(MemoryError):
    """The stack does not fit on its device; smaller stacks resume from the checkpoints."""


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Train one configured model (a stack of one); returns its summary.

    A completed summary already in ``out_dir`` means the job is done: it is returned
    untouched. A ``last.ckpt`` there means an earlier attempt was cut off: training
    resumes from it. Both only while the config is unchanged (:mod:`reglab.rerun`). A job
    another process trains is skipped (:mod:`reglab.locks`): in a sweep its summary says
    ``running elsewhere``, a single run ends with that error.
    """
    sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if sweep:  # the sweep prints a line per job (reglab.progress); the job's go to train.log
        quiet_job_console()
        if not str(HydraConfig.get().launcher.get("_target_", "")).endswith("BasicLauncher"):
            no_bar()  # a worker process: bars of parallel jobs would garble the console
    job = Job(cfg, Path(out_dir), _overrides(), _choices())
    summary = run_stack([job], hydra_logs=HydraConfig.initialized(), record_failures=False)[0]
    if summary["status"].startswith("running elsewhere"):
        if sweep:
            return summary
        raise RunFailed("running elsewhere", summary["error"])
    if summary["status"] == "failed":  # bad data or config: recorded, then one line
        raise DataError(summary["error"])
    if summary["status"] != "completed":
        raise RunFailed(summary["status"], summary.get("error", summary["status"]))
    return summary


def run_stack(
    jobs: list[Job], hydra_logs: bool = False, record_failures: bool = True
) -> list[dict]:
    """Train ``jobs`` as one stack; each writes its own summary; returns them in order.

    A member that fails (bad config or data, divergence) is recorded in its own summary
    and does not stop the others. Members whose batches would differ in size at some
    step (a training-set size that is not a multiple of the batch size, at another
    position in its epoch) train in stacks of their own, one after another.
    """
    summaries: dict[int, dict] = {}
    todo: list[tuple[int, Member]] = []
    try:
        for i, job in enumerate(jobs):
            member = _prepare(job, record_failures)
            if isinstance(member, dict):
                summaries[i] = member
            else:
                member.hydra_logs = hydra_logs
                todo.append((i, member))
        if todo:
            settings = _settings(todo[0][1].cfg)
            device = _device(todo[0][1].cfg)
            _configure_torch(todo[0][1].cfg, device)
            loaded = _load_data(todo, summaries, record_failures)
            for group in _phase_groups(loaded):
                summaries |= _train(group, settings, device)
    finally:  # done with these jobs (or failed): another process may take them
        for _, m in todo:
            m.lock.release()
    return [summaries[i] for i in range(len(jobs))]


def _prepare(job: Job, record_failures: bool) -> Member | dict:
    """The job's member, holding its lock; or its summary when this process does not train
    it (completed, bad config, running elsewhere)."""
    out_dir = Path(job.out_dir)
    job.cfg = _in_folder(job.cfg, out_dir, job.overrides)
    config = resolved(job.cfg)
    previous = read_summary(out_dir) or {}
    if previous.get("status") == "completed" and not changed_settings(
        previous.get("config"), config
    ):
        log.info("%s: already completed, skipping", out_dir)
        return previous
    lock = JobLock(out_dir)
    owner = lock.acquire()
    if owner is not None:
        return skipped(out_dir, owner, job.overrides)
    if lock.previous is not None:
        log.warning("%s: taking over from %s, which is gone", out_dir, lock.previous.describe())
    member = None
    try:
        member = _prepare_locked(job, config, out_dir, record_failures)
        return member
    finally:
        if isinstance(member, Member):
            member.lock = lock
        else:
            lock.release()


def _prepare_locked(job: Job, config: dict, out_dir: Path, record_failures: bool):
    """:func:`_prepare` once this process holds the job's lock."""
    previous = read_summary(out_dir)
    saved = read_checkpoint(out_dir / "checkpoints" / "last.ckpt")
    recorded = (previous or {}).get("config") or (saved or {}).get("reglab_config")
    changes = changed_settings(recorded, config)
    if changes:
        moved = set_aside(out_dir)
        shown = "; ".join(changes[:3]) + (f"; {len(changes) - 3} more" if len(changes) > 3 else "")
        log.warning(
            "%s: the config changed since its earlier run (%s); that run moved to %s",
            out_dir,
            shown,
            moved,
        )
        previous = saved = None
    if previous and previous.get("status") == "completed":
        log.info("%s: already completed, skipping", out_dir)
        return previous
    try:
        validate(job.cfg)
    except ConfigError as error:
        return _failed(job, str(error), record_failures)
    return Member(job, config, saved)


def _in_folder(cfg: DictConfig, out_dir: Path, overrides: list[str]) -> DictConfig:
    """The job's loggers write into its folder, named after its overrides (as Hydra's
    ``${hydra:runtime.output_dir}`` does for a job that Hydra launched itself)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        for spec in (cfg.get("logger") or {}).values():
            if "save_dir" in spec:
                spec.save_dir = str(out_dir)
            if "Wandb" in str(spec.get("_target_", "")):
                spec.name = ",".join(overrides) or out_dir.name
    return cfg


def _failed(job: Job, message: str, record: bool) -> dict:
    """A job that cannot train; its summary is written if ``record`` (a sweep's job: the
    sweep goes on and reports it; a single run just says why, in one line)."""
    summary = {"status": "failed", "error": message, "overrides": job.overrides, "metrics": {}}
    if record:
        write_json_atomic(Path(job.out_dir) / "summary.json", summary)
    return summary


def _settings(cfg: DictConfig) -> SimpleNamespace:
    """The keys every member of a stack shares and the loop reads."""
    t = cfg.trainer
    max_steps, max_epochs = int(t.get("max_steps", -1)), t.get("max_epochs")
    if max_epochs is None:  # Lightning's rule: 1000 epochs unless max_steps is set
        max_epochs = 1000 if max_steps == -1 else None
    elif max_epochs == -1:
        max_epochs = None
    ramp = cfg.get("momentum_ramp")
    return SimpleNamespace(
        max_steps=max_steps,
        max_epochs=max_epochs,
        check_val_every_n_epoch=t.get("check_val_every_n_epoch", 1),
        val_check_interval=t.get("val_check_interval"),
        log_every_n_steps=int(t.get("log_every_n_steps", 50)),
        precision=str(t.get("precision", "32-true")),
        progress=bool(t.get("enable_progress_bar", True)) and bar_allowed(),
        compile=bool(cfg.get("compile", False)),
        checkpoint=cfg.checkpoint,
        momentum_ramp=SimpleNamespace(**ramp) if ramp else None,
        stop_when_fit=bool(cfg.stop_when_fit),
        fit_threshold=float(cfg.fit_threshold),
        probe_size=int(cfg.probe_size),
        divergence_check_every=50,
    )


def _device(cfg: DictConfig) -> torch.device:
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator={accelerator}: no CUDA device is available")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _configure_torch(cfg: DictConfig, device: torch.device) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.trainer.get("deterministic"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda" and str(cfg.trainer.get("precision")) == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


def _load_data(
    todo: list[tuple[int, Member]], summaries: dict, record: bool
) -> list[tuple[int, Member, TensorDataModule]]:
    """Each member's data from the files read once; a member whose data fails is recorded."""
    first = todo[0][1].cfg.data
    try:
        raw = sources.load(first.name, first.root, first.download)
    except DataError as error:
        for i, m in todo:
            summaries[i] = _failed(m.job, str(error), record)
        return []
    loaded, prepared = [], None
    for i, m in todo:
        try:
            dm: TensorDataModule = instantiate(
                m.cfg.data, corruption=instantiate(m.cfg.corruption), seed=m.cfg.seed
            )
            prepared = prepared or dm.prepare(raw)
            loaded.append((i, m, dm.load(prepared)))
            m.input_spec = input_spec(dm)
        except DataError as error:
            summaries[i] = _failed(m.job, str(error), record)
    for entry in loaded:
        entry[2].prepared = prepared
    return loaded


def _phase_groups(loaded):
    """Members whose batch sizes agree at every step, in groups (see :func:`run_stack`)."""
    groups: dict[object, list] = {}
    for entry in loaded:
        _, m, dm = entry
        n, b = len(dm.splits["train"]), dm.batch_size
        key = "even" if n % b == 0 else (n, m.step % -(-n // b))
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


def _train(group, settings: SimpleNamespace, device: torch.device) -> dict[int, dict]:
    """Build the stack of ``group`` and train it to the end of every member."""
    members = [m for _, m, _ in group]
    try:
        stack = _build(group, settings, device)
        for m in members:
            start = f"from step {m.step}" if m.step else "from scratch"
            m.note(
                "training %s in stack %s of %d member(s)",
                start,
                stack.stack_info["id"],
                len(members),
            )
        try:
            summaries = stack.fit()
        except Interrupted:
            summaries = stack.summaries
    except torch.OutOfMemoryError as error:  # the launcher retries in smaller stacks
        for m in members:
            m.close_loggers({})
        raise StackOutOfMemory(str(error).splitlines()[0]) from None
    by_dir = {str(m.out_dir): i for i, m, _ in group}
    return {by_dir[d]: s for d, s in summaries.items()}


def _build(group, settings: SimpleNamespace, device: torch.device) -> Stack:
    """The stack of ``group``: shared data, one net, optimizer, schedules, regularizer;
    members resumed from their own checkpoints."""
    members = [m for _, m, _ in group]
    modules = [dm for _, _, dm in group]
    cfgs = [m.cfg for m in members]
    data = StackData(modules, modules[0].prepared, device)
    net = MemberNet.from_solo(
        [_solo_model(cfg, modules[0]) for cfg in cfgs],
        [stream_seed(cfg.seed, Stream.DROPOUT) & 0x7FFF_FFFF for cfg in cfgs],
    ).to(device)
    regularizer = Regularizer.stack([instantiate(cfg.regularizer) for cfg in cfgs], device)
    optimizer = _optimizer(cfgs, list(net.parameters()))
    make_scheduler = instantiate(cfgs[0].scheduler) if cfgs[0].get("scheduler") else None
    schedules = optim.MemberSchedules(make_scheduler, optimizer.lr)
    info = {"id": _stack_id(members), "size": len(members)}
    stack = Stack(members, data, net, regularizer, optimizer, schedules, settings, device, info)
    for k, m in enumerate(members):
        if m.saved is not None:
            stack.load_member(k, m.saved)
            m.saved = None
        m.open_loggers()
    return stack


def _solo_model(cfg: DictConfig, data: TensorDataModule) -> torch.nn.Module:
    """The member's network as a solo run builds it: its own initialization stream."""
    torch.manual_seed(stream_seed(cfg.seed, Stream.INIT))
    return instantiate(
        cfg.model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        dropout=instantiate(cfg.dropout),
        seed=cfg.seed,
    )


def _optimizer(cfgs: list[DictConfig], params: list[torch.nn.Parameter]):
    """The member-aware version of the configured torch.optim class, per-member settings."""
    target = cfgs[0].optimizer._target_
    if target not in MEMBER_OPTIMIZERS:
        raise ConfigError(
            f"optimizer._target_={target}: allowed are {', '.join(MEMBER_OPTIMIZERS)}"
        )
    settings = {k: v for k, v in resolved(cfgs[0].optimizer).items() if not k.startswith("_")}
    for key in PER_MEMBER_OPTIMIZER_KEYS:
        if key in settings:
            settings[key] = [resolved(c.optimizer)[key] for c in cfgs]
    return MEMBER_OPTIMIZERS[target](params, **settings, members=len(cfgs))


def _stack_id(members: list[Member]) -> str:
    import hashlib

    names = ",".join(sorted(str(m.out_dir) for m in members))
    return hashlib.sha1(names.encode()).hexdigest()[:8]


def _overrides() -> list[str]:
    """The command-line overrides of this job (its sweep point)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _choices() -> dict[str, str]:
    """The option chosen in each config group, e.g. {"corruption": "random_labels"}."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
