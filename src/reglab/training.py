"""The training loop: K members (a stack) take one vectorized step together.

A single ``reglab-train`` run is a stack of one; a sweep's compatible jobs
(:mod:`reglab.stacking`) are stacks of many. Each member is exactly its solo run: its own
data rows, order, corruption, normalization, initialization, dropout masks, strengths,
learning rate and momentum, its own epochs, evaluations and stopping. A member that ends
(``max_steps``, ``max_epochs``, ``stop_when_fit``, divergence) writes its summary at once
and leaves the stack; the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import math

import torch
import torch.nn.functional as F

from reglab.cadence import Cadence
from reglab.data.stack import StackData
from reglab.evaluation import evaluate_members, final_metrics, probe_members
from reglab.member import Member
from reglab.models.stack import MemberNet, select_parameters
from reglab.optim import MemberSchedules, momentum_at
from reglab.regularizers import Regularizer, zero_fraction
from reglab.signals import Signals
from reglab.train_sums import TrainSums

log = logging.getLogger("reglab")


class Interrupted(RuntimeError):
    """A signal stopped training; every member saved its checkpoint."""


class Stack:
    """Members, their data, one vectorized net, optimizer, schedules and regularizer."""

    def __init__(
        self,
        members,
        data: StackData,
        net: MemberNet,
        regularizer: Regularizer,
        optimizer,
        schedules: MemberSchedules,
        settings,
        device,
        stack_info,
    ) -> None:
        self.members: list[Member] = members
        self.data, self.net, self.regularizer = data, net, regularizer
        self.optimizer, self.schedules = optimizer, schedules
        self.s = settings  # the config keys every member shares (trainer, probe, ...)
        self.cadence = Cadence(settings)  # when members evaluate and checkpoint
        self.device = device
        self.stack_info = stack_info
        self.reg_params = select_parameters(
            net, regularizer.include_biases, regularizer.include_batchnorm
        )
        self.penalised = type(regularizer).penalty is not Regularizer.penalty
        self.sums = TrainSums(len(members), device)
        self.best_val: list[float] = [math.inf] * len(members)
        self.forward = torch.compile(net) if self.s.compile else net
        self.summaries: dict[str, dict] = {}
        self._lr = None
        self.last_loss: torch.Tensor | None = None  # each member's data loss at its last step
        self.steps_t: torch.Tensor | None = None  # each member's step, on the device

    # -- the step ------------------------------------------------------------------------
    def train_step(self, steps: list[int], length: int) -> torch.Tensor:
        """One optimizer step of every member on its own batch; returns the data losses (K,)."""
        x, y = self.data.train_batch(steps, self.steps_t, length)
        self.net.mask_counter.copy_(self.steps_t)  # masks: a function of (seed, step, layer)
        with self.autocast():
            logits = self.forward(x)  # (K, B, classes)
            data_loss = (
                F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
                .view(len(steps), -1)
                .mean(1)
            )  # each member's mean: its grads are its solo grads
            penalty = self.regularizer.penalty(self.reg_params)
            loss = data_loss if penalty is None else data_loss + penalty
        loss.sum().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.regularizer.after_step(self.reg_params, self.lr_tensor())  # proximal ℓ1, max-norm
        wrong = (logits.detach().argmax(-1) != y).sum(1)
        self.sums.add(data_loss, wrong, penalty, length)
        return data_loss.detach()

    def autocast(self):
        if self.s.precision == "bf16-mixed":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def lr_tensor(self) -> torch.Tensor:
        if self._lr is None:
            self._lr = torch.tensor(self.optimizer.lr, device=self.device)
        return self._lr

    def set_hyperparameters(self, steps: list[int]) -> None:
        """Each member's lr from its own schedule, momentum from its own ramp step."""
        ramp = self.s.momentum_ramp
        if ramp:
            value = [momentum_at(s, ramp.start, ramp.end, ramp.steps) for s in steps]
            if hasattr(self.optimizer, "betas"):
                self.optimizer.set_hyperparameters(beta1=value)
            else:
                self.optimizer.set_hyperparameters(momentum=value)

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> dict[str, dict]:
        """Train until every member has ended; returns {out_dir: summary}."""
        with Signals() as signals, self._progress() as bar:
            self._finish([k for k, m in enumerate(self.members) if self._done(k)])
            while self.members:
                bar.update(1)
                steps = [m.step for m in self.members]
                if self.steps_t is None:  # the members' steps on the device, kept in step
                    self.steps_t = torch.tensor(steps, device=self.device)
                self.set_hyperparameters(steps)
                data_loss = self.last_loss = self.train_step(steps, self._batch_length(steps))
                self.steps_t += 1
                for m in self.members:
                    m.step += 1
                self._after_step(data_loss)
                if signals.received is not None:
                    self._interrupt(signals)
        return self.summaries

    def _batch_length(self, steps: list[int]) -> int:
        if self.data.full_batches:
            return self.data.batch_size
        lengths = {self.data.batch_length(k, s) for k, s in enumerate(steps)}
        if len(lengths) != 1:
            raise RuntimeError("members' batches differ in size; plan them apart")
        return lengths.pop()

    def _progress(self):
        """A progress bar over the steps left (a single run keeps Lightning's old bar)."""
        from tqdm import tqdm

        left = [self._steps_left(k) for k in range(len(self.members))]
        total = max(left) if left and None not in left else None
        return tqdm(
            total=total,
            disable=not self.s.progress,
            mininterval=1.0,
            unit="step",
            desc=f"training {len(self.members)} member{'s' * (len(self.members) > 1)}",
            dynamic_ncols=True,
            leave=False,
        )

    def _steps_left(self, k: int) -> int | None:
        m, s, nb = self.members[k], self.s, self.data.batches_per_epoch[k]
        limits = [s.max_steps] if s.max_steps > 0 else []
        if s.max_epochs is not None:
            limits.append(s.max_epochs * nb)
        return max(0, min(limits) - m.step) if limits else None

    def _after_step(self, data_loss: torch.Tensor) -> None:
        """Per-member events of the step just taken: epoch ends, evaluations, logs, ends."""
        s = self.s
        host_loss = None
        check = any((m.step - 1) % s.divergence_check_every == 0 for m in self.members)
        log_now = any(m.step % s.log_every_n_steps == 0 for m in self.members)
        if check or log_now:
            host_loss = data_loss.tolist()
        due, ended = [], []
        for k, m in enumerate(self.members):
            nb = self.data.batches_per_epoch[k]
            if host_loss is not None and m.step % s.log_every_n_steps == 0:
                m.log_metrics({"train/loss_step": host_loss[k]})
            checked = (m.step - 1) % s.divergence_check_every == 0
            if checked and host_loss is not None and not math.isfinite(host_loss[k]):
                self._diverged(m, f"loss is {host_loss[k]} at step {m.step - 1}")
                ended.append(k)
                continue
            if m.step % nb == 0 and not self._epoch_end(k, m):  # its epoch ended, diverged
                ended.append(k)
                continue
            if self.cadence.eval_due(m.step, nb):
                due.append(k)
        due = [k for k in due if k not in ended]
        if due:
            self._evaluate(due)
        timed = self.cadence.time_due()  # every checkpoint.every_minutes: all members
        for k, m in enumerate(self.members):
            if k in ended:
                continue
            if self._done(k):  # its summary and model.pt follow: no checkpoint to resume
                ended.append(k)
            elif timed or self.cadence.checkpoint_due(m.step):
                self._save(k)
        self._finish(sorted(set(ended)))

    def _epoch_end(self, k: int, m: Member) -> bool:
        """The epoch's training means (a NaN mean is divergence); the member's schedule steps."""
        sums = self.sums.take("epoch", k)
        n = sums["count"]
        if not math.isfinite(sums["loss"]):
            self._diverged(
                m, f"mean training loss is {sums['loss'] / n} in epoch {self._epoch(k) - 1}"
            )
            return False
        m.epoch_means = {
            "train/loss_epoch": sums["loss"] / n,
            "train/error": 100.0 * sums["wrong"] / n,
        }
        if self.penalised:
            m.epoch_means["train/penalty"] = sums["penalty"] / n
        m.log_metrics(m.epoch_means)
        self.schedules.epoch_end(k)
        lrs = self.schedules.lrs()
        if lrs != list(self.optimizer.lr):
            self.optimizer.set_hyperparameters(lr=lrs)
            self._lr = None
        return True

    def _epoch(self, k: int) -> int:
        return self.members[k].step // self.data.batches_per_epoch[k]

    def _done(self, k: int) -> bool:
        m, s = self.members[k], self.s
        if m.status != "running":
            return True
        if s.max_steps > 0 and m.step >= s.max_steps:
            return True
        return (
            s.max_epochs is not None
            and self._epoch(k) >= s.max_epochs
            and (m.step % self.data.batches_per_epoch[k] == 0)
        )

    # -- evaluation ----------------------------------------------------------------------
    def _evaluate(self, due: list[int]) -> None:
        """An evaluation row for each member in ``due``: losses and errors of the evaluated
        splits, zero-weight fraction, activation statistics, training loss since the last."""
        idx = torch.tensor(due, device=self.device)
        splits = self.eval_names()
        results = {name: evaluate_members(self.net, self.data, name, idx) for name in splits}
        zeros = self.zero_fractions(idx)
        probes = self._probe(idx, self.s.probe_size)
        last = self.last_loss.index_select(0, idx).tolist() if self.last_loss is not None else None
        for i, k in enumerate(due):
            m = self.members[k]
            row = {"weights/zero_fraction": zeros[i]} | probes[i]
            for name, (loss, error) in results.items():
                row[f"{name}/loss"], row[f"{name}/error"] = loss[i], error[i]
            since = self.sums.take("since_eval", k)
            if since["count"]:
                row["train/loss_since_eval"] = since["loss"] / since["count"]
            if last is not None:
                row["train/loss_step"] = last[i]
            m.record(self._epoch(k) - (m.step % self.data.batches_per_epoch[k] == 0), row)
            self._keep_best(k, m, row)
            if self.s.stop_when_fit:
                monitor = row.get("train_eval/error", m.epoch_means.get("train/error"))
                if monitor is not None and monitor < self.s.fit_threshold + 1e-9:
                    m.status = "fitted"

    def zero_fractions(self, idx: torch.Tensor) -> list[float]:
        if not self.reg_params:
            return [0.0] * len(idx)
        return zero_fraction([p.index_select(0, idx) for p in self.reg_params]).tolist()

    def _probe(self, idx: torch.Tensor, size: int) -> list[dict[str, float]]:
        """Activation statistics on each member's first ``probe_size`` test images."""
        if not size:
            return [{} for _ in range(len(idx))]
        images, _, _ = next(self.data.eval_batches("test", idx, limit=size, chunk=size))
        return probe_members(self.net, images, idx)

    def eval_names(self) -> list[str]:
        names = ["val"] if max(self.data.sizes["val"]) else []
        return [*names, "test", *(["train_eval"] if self.data.eval_train_set else [])]

    def _keep_best(self, k: int, m: Member, row: dict) -> None:
        error = row.get("val/error")
        if not (self.s.checkpoint.enabled and self.s.checkpoint.keep) or error is None:
            return
        if error < self.best_val[k]:
            self.best_val[k] = error
            path = m.out_dir / "checkpoints" / "best.ckpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {"state_dict": self.net.member_state_dict(k), "step": m.step, "val/error": error},
                path,
            )

    # -- ends ----------------------------------------------------------------------------
    def _diverged(self, m: Member, message: str) -> None:
        m.status, m.error = "diverged", message

    def member_state(self, k: int) -> dict:
        return {
            "state_dict": self.net.member_state_dict(k),
            "optimizer": self.optimizer.state_of(k),
            "schedule": self.schedules.state_dict_member(k),
            "sums": self.sums.member(k),
            "best_val": self.best_val[k],
        }

    def load_member(self, k: int, saved: dict) -> None:
        self.net.load_member_state_dict(k, saved["state_dict"])
        self.optimizer.load_state_of(k, saved["optimizer"])
        self.schedules.load_state_dict_member(k, saved["schedule"])
        self.sums.load(k, saved["sums"])
        self.best_val[k] = saved.get("best_val", math.inf)
        self._lr = None

    def _save(self, k: int) -> None:
        self.members[k].save_checkpoint(self.member_state(k))

    def _interrupt(self, signals: Signals) -> None:
        for k, m in enumerate(self.members):
            if self.s.checkpoint.enabled:
                self._save(k)
            m.status, m.error = "interrupted", f"interrupted at step {m.step}; rerun to resume"
            self.summaries[str(m.out_dir)] = m.write_summary(self._end_metrics(k), self.stack_info)
            m.close_loggers({})
        self.members = []
        signals.hand_over()
        raise Interrupted("a signal stopped training")

    def _end_metrics(self, k: int) -> dict:
        m = self.members[k]
        return {
            "steps": m.step,
            "epochs": -(-m.step // self.data.batches_per_epoch[k]),  # begun, as Lightning counts
            "steps_to_fit": steps_to_fit(m.history, self.s.fit_threshold),
        }

    def _finish(self, ended: list[int]) -> None:
        """Final metrics and summaries of the members in ``ended``, which leave the stack."""
        if not ended:
            return
        good = [k for k in ended if self.members[k].status in ("running", "fitted")]
        unevaluated = [k for k in good if self.members[k].step not in self.members[k].rows]
        if unevaluated:  # stopped between evaluations
            self._evaluate(unevaluated)
        finals = dict(zip(good, final_metrics(self, good), strict=True)) if good else {}
        for k in ended:
            m = self.members[k]
            metrics: dict = {}
            if k in finals:
                metrics = finals[k]
                if not math.isfinite(metrics["train_loss"]):
                    m.status, m.error = (
                        "diverged",
                        f"training loss is {metrics['train_loss']} after training",
                    )
                else:
                    m.status = "completed"
            metrics |= self._end_metrics(k)
            self.summaries[str(m.out_dir)] = m.write_summary(metrics, self.stack_info)
            if m.status == "completed":
                m.note(
                    "test error %.2f %% (train %.2f %%) after %d steps → %s",
                    metrics["test_error"],
                    metrics["train_error"],
                    m.step,
                    m.out_dir / "summary.json",
                )
            else:
                m.note("run %s: %s", m.status, m.error)
            m.close_loggers(metrics)
            if m.status == "completed":
                if self.cadence.enabled and self.s.checkpoint.keep:
                    self._save(k)  # its final state, to resume from (train on)
                m.finished(self.net.member_state_dict(k), self.s.checkpoint.keep)
        keep = [k for k in range(len(self.members)) if k not in ended]
        if not keep:
            self.members = []
            return
        idx = torch.tensor(keep, device=self.device)
        new_params = self.net.keep(idx)
        self.optimizer.keep(keep, list(self.net.parameters()))
        del new_params
        self.data.keep(idx)
        self.regularizer.keep(idx)
        self.schedules.keep(keep)
        self.sums.keep(idx)
        self.steps_t = None
        if self.last_loss is not None:
            self.last_loss = self.last_loss.index_select(0, idx)
        self.best_val = [self.best_val[k] for k in keep]
        self.members = [self.members[k] for k in keep]
        self.reg_params = select_parameters(
            self.net, self.regularizer.include_biases, self.regularizer.include_batchnorm
        )
        self._lr = None
        if self.s.compile:
            self.forward = torch.compile(self.net)


def steps_to_fit(history: list[dict], threshold: float) -> int | None:
    """First evaluated step at which the training error (%) was <= ``threshold``."""
    for row in history:
        error = row.get("train_eval/error", row.get("train/error_epoch", row.get("train/error")))
        if error is not None and error <= threshold:
            return int(row["step"])
    return None
