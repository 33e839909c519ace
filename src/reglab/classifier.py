"""The LightningModule: K classifiers of one architecture trained as one (a *stack*).

A single ``reglab-train`` run is a stack of one; a sweep's compatible jobs
(:mod:`reglab.stacking`) are stacks of many. Its parts come from each member's composed
config: the net (``model``, any ``nn.Module``, stacked by :class:`~reglab.models.stack.
StackedNet`), the regularizer, the dropout settings, the optimizer and the scheduler.
Each member is exactly its solo run: its own data rows, order, corruption,
initialization, dropout masks, strengths, learning rate and momentum, its own epochs.

In a notebook::

    module = StackedClassifier.from_configs([cfg])     # cfg: a composed reglab config
    data = StackDataModule.from_configs([cfg])
    pl.Trainer(max_steps=500).fit(module, datamodule=data)
    pl.Trainer().test(module, datamodule=data)         # test/error, test/loss
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from reglab import optim, schedules
from reglab.config_keys import OPTIMIZER_TARGETS
from reglab.evaluation import evaluate_members, probe_members
from reglab.models.dropout import bind_dropout
from reglab.models.stack import StackedNet
from reglab.regularizers import MemberRegularizer, strength_names, zero_fraction
from reglab.seeding import Stream, stream_seed
from reglab.train_sums import TrainSums
from reglab.validation import ConfigError, check_optimizer

log = logging.getLogger("reglab")

#: torch.optim classes of conf/optimizer and their member-aware versions (reglab.optim).
MEMBER_OPTIMIZERS = dict(
    zip(OPTIMIZER_TARGETS, (optim.MemberSGD, optim.MemberAdam, optim.MemberAdamW), strict=True)
)
#: Optimizer settings that may differ between members (the rest must be equal).
PER_MEMBER_OPTIMIZER_KEYS = ("lr", "momentum", "weight_decay", "betas")


def build_model(cfg: DictConfig, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """A member's network as its solo run builds it: its own initialization stream; the
    data's ``input_shape`` and ``num_classes``, and reglab's ``dropout``/``seed``, go to
    the constructor where it takes them; its dropout gets the run's mask stream."""
    target = get_class(cfg.model._target_)
    params = inspect.signature(target).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    offered = {
        "input_shape": tuple(input_shape),
        "num_classes": num_classes,
        "dropout": instantiate(cfg.dropout),
        "seed": cfg.seed,
    }
    kwargs = {k: v for k, v in offered.items() if k in params or (takes_all and k in offered)}
    if "dropout" not in kwargs:
        for key in ("p_input", "p_hidden"):
            if cfg.dropout.get(key, 1.0) != 1.0:
                raise ConfigError(
                    f"dropout.{key}={cfg.dropout[key]}: {target.__name__} takes no dropout "
                    "argument; put nn.Dropout layers in the model, or use dropout=none"
                )
    torch.manual_seed(stream_seed(cfg.seed, Stream.INIT))
    model = instantiate(cfg.model, **kwargs)
    return bind_dropout(model, stream_seed(cfg.seed, Stream.DROPOUT))


def member_optimizer(cfgs: Sequence[DictConfig], params: list[nn.Parameter]):
    """The member-aware version of the configured torch.optim class, per-member settings."""
    target = cfgs[0].optimizer._target_
    check_optimizer(target)

    def settings(cfg):
        return {k: v for k, v in _plain(cfg.optimizer).items() if not k.startswith("_")}

    merged = settings(cfgs[0])
    for key in PER_MEMBER_OPTIMIZER_KEYS:
        if key in merged:
            merged[key] = [settings(c)[key] for c in cfgs]
    return MEMBER_OPTIMIZERS[target](params, **merged, members=len(cfgs))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


class StackedClassifier(pl.LightningModule):
    """K ≥ 1 classifiers of one architecture, one per composed config (see module doc)."""

    def __init__(
        self, configs: Sequence[dict], input_shape: Sequence[int], num_classes: int
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.automatic_optimization = False  # one step of every member: reglab.optim
        self.cfgs = [OmegaConf.create(c) for c in configs]
        first = self.cfgs[0]
        self.net = StackedNet(
            [build_model(c, input_shape, num_classes) for c in self.cfgs],
            vmap_solo=first.get("vmap_solo", "auto"),
        )
        if first.get("compile"):  # torch.compile in place: the state_dict keeps its names
            self.net.compile()
        reg_cfg = _plain(first.regularizer)
        self.regularizer = MemberRegularizer(
            [instantiate(c.regularizer) for c in self.cfgs],
            strength_names(reg_cfg),
            torch.device("cpu"),
        )
        make_scheduler = instantiate(first.scheduler) if first.get("scheduler") else None
        self.schedules = schedules.MemberSchedules(
            make_scheduler, [float(_plain(c.optimizer)["lr"]) for c in self.cfgs]
        )
        ramp = first.get("momentum_ramp")
        self.ramp = dict(ramp) if ramp else None
        clip = first.trainer.get("gradient_clip_val")  # Lightning's key, per member here
        algorithm = first.trainer.get("gradient_clip_algorithm") or "norm"
        self.clip = (float(clip), algorithm) if clip else None
        self.mc_samples = [int(c.dropout.get("mc_samples", 0)) for c in self.cfgs]
        self.sums: TrainSums | None = None
        self.last_loss: torch.Tensor | None = None  # each member's data loss at its last step
        self.epoch_means: list[dict[str, float]] = [{} for _ in self.cfgs]
        self.problems: dict[int, str] = {}  # member → why it diverged in the last step
        self.epochs_ended: list[int] = []  # members whose epoch ended in the last step
        self._lr: torch.Tensor | None = None
        self._eval_sums: list | None = None
        self.log_train_loss = True  # to the Trainer's loggers (not in reglab's own runs)

    @classmethod
    def from_configs(cls, configs: Sequence[DictConfig]) -> StackedClassifier:
        """From composed configs; the input shape and classes from their data set. Their
        ``logger`` is left out: a notebook's loggers are its Trainer's (and a composed
        config's ``save_dir`` names Hydra's run folder, which only a Hydra job has)."""
        from reglab.datasets import input_shape
        from reglab.resolvers import register

        register()  # the configs may use reglab's resolvers
        shape, classes = input_shape(configs[0].data)
        plain = [{k: v for k, v in c.items() if k != "logger"} for c in configs]
        return cls([_plain(OmegaConf.create(c)) for c in plain], shape, classes)

    # -- parts -----------------------------------------------------------------------------
    @property
    def data(self):
        """The stack's data (:class:`~reglab.data.stack.StackData`) once fitting."""
        return self.trainer.datamodule.data

    @property
    def num_members(self) -> int:
        return len(self.cfgs)

    def reg_params(self) -> list[nn.Parameter]:
        return self.regularizer.template.parameters(self.net.body)

    def configure_optimizers(self):
        return member_optimizer(self.cfgs, list(self.net.parameters()))

    def on_fit_start(self) -> None:
        """On the training device: sums, strengths; a trial of the net and regularizer, so a
        model or penalty that cannot run per member is refused before any step."""
        if self.sums is None:
            self.sums = TrainSums(self.num_members, self.device)
        self.regularizer.strengths = {
            n: v.to(self.device) for n, v in self.regularizer.strengths.items()
        }
        self._lr = None
        x, _ = self.data.next_batch()
        self.net.check(x[:, :2])
        with self.trainer.precision_plugin.train_step_context():
            differs = self.net.choose_solo_path(x)  # vmap_solo=auto: skip vmap if equal
        if differs:
            log.info("vmap_solo=auto: %s; this run of one stays vmapped", differs)
        elif self.net.direct and self.net.vmap_solo == "auto":
            log.info("vmap_solo=auto: the trial step matched vmap bit for bit; direct calls")
        self.regularizer.check(self.reg_params(), self.lr_tensor())

    # -- the step --------------------------------------------------------------------------
    def training_step(self, dataloader_iter) -> None:
        """One optimizer step of every member on its own batch at its own step."""
        (x, y), _, _ = next(dataloader_iter)
        data, opt = self.data, self.optimizers()
        self._set_momentum(data.steps)
        self.net.set_mask_counter(data.steps_t)  # masks: a function of (seed, step, layer)
        logits = self.net(x)  # (K, B, classes)
        data_loss = (
            F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
            .view(len(data.steps), -1)
            .mean(1)
        )  # each member's mean: its grads are its solo grads
        params = self.reg_params() if self.regularizer.active else []
        penalty = self.regularizer.penalty(params)
        loss = data_loss if penalty is None else data_loss + penalty
        self.manual_backward(loss.sum())
        if self.clip is not None:
            self._clip_per_member(*self.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.regularizer.after_step(params, self.lr_tensor())  # proximal ℓ1, max-norm
        wrong = (logits.detach().argmax(-1) != y).sum(1)
        self.sums.add(data_loss, wrong, penalty, y.shape[1])
        data.advance()
        self.last_loss = data_loss.detach()
        self._epoch_ends()
        if self.log_train_loss and self.trainer.loggers and self.num_members == 1:
            self.log("train/loss", self.last_loss[0], prog_bar=True)

    def _set_momentum(self, steps: list[int]) -> None:
        """Each member's momentum from its own ramp step (Srivastava App. A.1)."""
        if self.ramp:
            value = [schedules.momentum_at(s, **self.ramp) for s in steps]
            opt = self.optimizers().optimizer
            name = "beta1" if hasattr(opt, "betas") else "momentum"
            opt.set_hyperparameters(**{name: value})

    def _clip_per_member(self, value: float, algorithm: str) -> None:
        """Lightning's gradient clipping, applied to each member's gradients alone."""
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        if algorithm == "value":
            for g in grads:
                g.clamp_(-value, value)
            return
        norms = torch.stack([g.float().flatten(1).square().sum(1) for g in grads]).sum(0).sqrt()
        scale = (value / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))

    def lr_tensor(self) -> torch.Tensor:
        if self._lr is None:
            self._lr = torch.tensor(self.optimizers().optimizer.lr, device=self.device)
        return self._lr

    def _epoch_ends(self) -> None:
        """The members whose epoch just ended: training means (a NaN mean is divergence),
        their schedules step."""
        data = self.data
        self.epochs_ended, self.problems = [], {}
        for k, step in enumerate(data.steps):
            if step % data.batches_per_epoch[k]:
                continue
            sums = self.sums.take("epoch", k)
            n = sums["count"]
            if not math.isfinite(sums["loss"]):
                epoch = step // data.batches_per_epoch[k] - 1
                self.problems[k] = f"mean training loss is {sums['loss'] / n} in epoch {epoch}"
                continue
            self.epoch_means[k] = {
                "train/loss_epoch": sums["loss"] / n,
                "train/error": 100.0 * sums["wrong"] / n,
            }
            if self.regularizer.penalised:
                self.epoch_means[k]["train/penalty"] = sums["penalty"] / n
            self.epochs_ended.append(k)
            self.schedules.epoch_end(k)
        if self.epochs_ended:
            opt = self.optimizers().optimizer
            lrs = self.schedules.lrs()
            if lrs != list(opt.lr):
                opt.set_hyperparameters(lr=lrs)
                self._lr = None

    # -- evaluation (reglab's own cadence: reglab.callbacks.MemberRuns) ---------------------
    def evaluate(self, due: list[int], splits: list[str], probe_size: int) -> list[dict]:
        """An evaluation row for each member in ``due``: losses and errors (%) of
        ``splits``, zero-weight fraction, activation statistics."""
        idx = torch.tensor(due, device=self.device)
        results = {name: evaluate_members(self.net, self.data, name, idx) for name in splits}
        params = self.reg_params()
        zeros = (
            zero_fraction([p.index_select(0, idx) for p in params]).tolist()
            if params
            else [0.0] * len(due)
        )
        probes = [{} for _ in due]
        if probe_size:
            images, _, _ = next(self.data.eval_batches("test", idx, limit=probe_size))
            probes = probe_members(self.net, images, idx)
        rows = []
        for i in range(len(due)):
            row = {"weights/zero_fraction": zeros[i]} | probes[i]
            for name, (loss, error) in results.items():
                row[f"{name}/loss"], row[f"{name}/error"] = loss[i], error[i]
            rows.append(row)
        return rows

    def test_error_mc(self, ks: list[int]) -> dict[int, tuple[float, float]]:
        """(loss, error %) on the test set averaging ``mc_samples`` stochastic passes."""
        mc = [k for k in ks if self.mc_samples[k]]
        if not mc:
            return {}
        idx = torch.tensor(mc, device=self.device)
        losses, errors = evaluate_members(self.net, self.data, "test", idx, self.mc_samples[mc[0]])
        return {k: (loss, error) for k, loss, error in zip(mc, losses, errors, strict=True)}

    # -- Lightning's evaluation loops (a user's trainer.validate / trainer.test) ----------
    def _eval_step(self, batch) -> None:
        x, y, valid = batch
        logits = self.net(x).float()
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        step = torch.stack([
            (losses.view_as(y) * valid).sum(1).double(),
            ((logits.argmax(-1) != y) & valid).sum(1).double(),
            valid.sum(1).double(),
        ])  # fmt: skip
        self._eval_sums = step if self._eval_sums is None else self._eval_sums + step

    def _eval_end(self, split: str) -> None:
        if self._eval_sums is None:  # no batches (a data set without a validation split)
            return
        loss, wrong, count = self._eval_sums.clamp_min(0).unbind(0)
        self._eval_sums = None
        for k in range(self.num_members):
            suffix = "" if self.num_members == 1 else f"/member{k}"
            self.log(f"{split}/loss{suffix}", loss[k] / count[k])
            self.log(f"{split}/error{suffix}", 100.0 * wrong[k] / count[k])

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    # -- members ---------------------------------------------------------------------------
    def member_state(self, k: int) -> dict:
        """Member k alone: weights, optimizer and schedule state, training sums."""
        return {
            "model": self.net.member_state_dict(k),
            "optimizer": self.optimizers().optimizer.state_of(k),
            "schedule": self.schedules.state_dict_member(k),
            "sums": self.sums.member(k),
        }

    def load_member(self, k: int, saved: dict) -> None:
        self.net.load_member_state_dict(k, saved["model"])
        self.optimizers().optimizer.load_state_of(k, saved["optimizer"])
        self.schedules.load_state_dict_member(k, saved["schedule"])
        self.sums.load(k, saved["sums"])
        self._lr = None

    def keep(self, keep: list[int]) -> None:
        """Only members ``keep`` go on (the others ended), in that order."""
        idx = torch.tensor(keep, device=self.device)
        self.net.keep(idx)
        self.optimizers().optimizer.keep(keep, list(self.net.parameters()))
        self.data.keep(idx)
        self.regularizer.keep(idx)
        self.schedules.keep(keep)
        self.sums.keep(idx)
        if self.last_loss is not None:
            self.last_loss = self.last_loss.index_select(0, idx)
        self.cfgs = [self.cfgs[k] for k in keep]
        self.mc_samples = [self.mc_samples[k] for k in keep]
        self.epoch_means = [self.epoch_means[k] for k in keep]
        self._lr = None
