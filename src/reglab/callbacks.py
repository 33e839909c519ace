"""reglab's Lightning callbacks: each member of a stack as its own run.

:class:`MemberRuns` (``conf/callbacks/default.yaml``) gives every member of a
:class:`~reglab.classifier.StackedClassifier` what a solo run has: its folder, loggers,
evaluations at its own cadence (:mod:`reglab.cadence`: Lightning's ``val_check_interval``
/ ``check_val_every_n_epoch`` rule on the member's own steps and epochs), checkpoints
(``last.ckpt``, one member each, resumable in a stack of any make-up), its end
(``max_steps``, ``max_epochs``, ``stop_when_fit``, divergence, a signal) with its summary,
``model.pt`` and closed loggers. A member that ends leaves the stack inside Lightning's
loop; the Trainer stops when none are left.
"""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from reglab import timing
from reglab.cadence import Cadence
from reglab.member import Member
from reglab.signals import Signals
from reglab.summary import COMPLETED, DIVERGED, FITTED, INTERRUPTED, RUNNING

log = logging.getLogger("reglab")


class MemberRuns(pl.Callback):
    """Per-member evaluation, checkpoints, ends and summaries (see the module doc)."""

    def __init__(
        self,
        every_minutes: float | None = 5,
        every_n_steps: int | None = None,
        enabled: bool = True,
        keep: bool = False,
        stop_when_fit: bool = False,
        fit_threshold: float = 0.0,
        probe_size: int = 1000,
        divergence_check_every: int = 50,
    ) -> None:
        checkpoint = {"enabled": enabled, "every_minutes": every_minutes}
        checkpoint |= {"every_n_steps": every_n_steps, "keep": keep}
        self.s = SimpleNamespace(
            checkpoint=SimpleNamespace(**checkpoint),
            stop_when_fit=stop_when_fit,
            fit_threshold=float(fit_threshold),
            probe_size=int(probe_size),
            divergence_check_every=divergence_check_every,
        )
        self.members: list[Member] = []
        self.summaries: dict[str, dict] = {}
        self.stack_info: dict = {}
        self.signals = Signals()

    def attach(
        self, members: list[Member], stack_info: dict, trainer_cfg, signals: Signals
    ) -> None:
        """The members' runs, in the module's member order; the trainer keys the cadence
        reads (Lightning's names, applied to each member's own steps); the signals that
        stop training after a step (:mod:`reglab.signals`)."""
        self.members, self.stack_info, self.signals = list(members), stack_info, signals
        self.limits = _limits(trainer_cfg)
        self.s.check_val_every_n_epoch = trainer_cfg.get("check_val_every_n_epoch", 1)
        self.s.val_check_interval = trainer_cfg.get("val_check_interval")
        self.s.log_every_n_steps = int(trainer_cfg.get("log_every_n_steps", 50))
        self.cadence = Cadence(self.s)
        self.best_val = [math.inf] * len(members)

    # -- Lightning's hooks -----------------------------------------------------------------
    def on_train_start(self, trainer, module) -> None:
        self.module = module
        for k, m in enumerate(self.members):
            if m.saved is not None:
                module.load_member(k, m.saved["member"])
                self.best_val[k] = m.saved.get("best_val", math.inf)
                module.data.start_at(k, m.step)
                m.saved = None
        module.log_train_loss = False  # each member logs to its own loggers
        self._finish([k for k in range(len(self.members)) if self._done(k)])
        trainer.should_stop = not self.members

    def on_train_end(self, trainer, module) -> None:
        """The Trainer stopped before some members' own ends (a user's callback set
        ``should_stop``: EarlyStopping, Timer): they end here, as completed runs."""
        self._finish(list(range(len(self.members))))

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        """Ctrl-C or SIGTERM between steps' checks: every member saves its checkpoint."""
        if self.members and isinstance(exception, KeyboardInterrupt | SIGTERMException):
            self._interrupt(type(exception).__name__)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        timing.to("train")  # summary.json's timing: steps from the first (reglab.timing)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        """Per-member events of the step just taken: logs, divergence, epoch ends,
        evaluations, checkpoints, ends."""
        s, data = self.s, module.data
        steps = data.steps
        check = any((n - 1) % s.divergence_check_every == 0 for n in steps)
        log_now = any(n % s.log_every_n_steps == 0 for n in steps)
        host_loss = module.last_loss.tolist() if check or log_now else None
        due, ended = [], []
        for k, m in enumerate(self.members):
            m.step = steps[k]
            nb = data.batches_per_epoch[k]
            if host_loss is not None and m.step % s.log_every_n_steps == 0:
                m.log_metrics({"train/loss_step": host_loss[k]})
            checked = (m.step - 1) % s.divergence_check_every == 0
            if checked and host_loss is not None and not math.isfinite(host_loss[k]):
                self._diverged(m, f"loss is {host_loss[k]} at step {m.step - 1}")
            elif k in module.problems:
                self._diverged(m, module.problems[k])
            if m.status == DIVERGED:
                ended.append(k)
                continue
            if k in module.epochs_ended:
                m.epoch_means = module.epoch_means[k]
                m.log_metrics(m.epoch_means)
            if self.cadence.eval_due(m.step, nb):
                due.append(k)
        if due:
            with timing.phase("eval"):
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
        if self.signals.received is not None and self.members:
            self._interrupt(f"signal {self.signals.received}")
            self.signals.hand_over()
        trainer.should_stop = trainer.should_stop or not self.members

    # -- evaluation ------------------------------------------------------------------------
    def _evaluate(self, due: list[int]) -> None:
        module = self.module
        rows = module.evaluate(due, self._eval_names(), self.s.probe_size)
        last = None
        if module.last_loss is not None:
            idx = torch.tensor(due, device=module.device)
            last = module.last_loss.index_select(0, idx).tolist()
        for i, (k, row) in enumerate(zip(due, rows, strict=True)):
            m = self.members[k]
            since = module.sums.take("since_eval", k)
            if since["count"]:
                row["train/loss_since_eval"] = since["loss"] / since["count"]
            if last is not None:
                row["train/loss_step"] = last[i]
            nb = module.data.batches_per_epoch[k]
            m.record(m.step // nb - (m.step % nb == 0), row)
            self._keep_best(k, m, row)
            if self.s.stop_when_fit:
                monitor = row.get("train_eval/error", m.epoch_means.get("train/error"))
                if monitor is not None and monitor < self.s.fit_threshold + 1e-9:
                    m.status = FITTED

    def _eval_names(self) -> list[str]:
        data = self.module.data
        names = ["val"] if max(data.sizes["val"]) else []
        return [*names, "test", *(["train_eval"] if data.eval_train_set else [])]

    def _keep_best(self, k: int, m: Member, row: dict) -> None:
        error = row.get("val/error")
        if not (self.s.checkpoint.enabled and self.s.checkpoint.keep) or error is None:
            return
        if error < self.best_val[k]:
            self.best_val[k] = error
            state = {"state_dict": self.module.net.member_state_dict(k), "val/error": error}
            with timing.phase("write"):
                m.save_file("best.ckpt", state | {"step": m.step})

    def _final_metrics(self, ks: list[int]) -> list[dict]:
        """Errors (%) and losses on every split, zero-weight fraction, label noise and probe
        of members ``ks`` (eval mode), read from their last evaluation row where it has
        them (same weights, same arithmetic)."""
        module, data = self.module, self.module.data
        rows = [self.members[k].rows[self.members[k].step] for k in ks]
        out: list[dict] = [{} for _ in ks]
        for split, name in (("train", "train_eval"), ("val", "val"), ("test", "test")):
            todo = [i for i, k in enumerate(ks) if data.sizes[split][k]]
            todo = [i for i in todo if f"{name}/error" not in rows[i]]
            if todo:
                from reglab.evaluation import evaluate_members

                idx = torch.tensor([ks[i] for i in todo], device=module.device)
                for i, loss, error in zip(
                    todo, *evaluate_members(module.net, data, name, idx), strict=True
                ):
                    rows[i] = rows[i] | {f"{name}/loss": loss, f"{name}/error": error}
            for i, k in enumerate(ks):
                has = data.sizes[split][k] > 0
                out[i][f"{split}_error"] = rows[i][f"{name}/error"] if has else None
                out[i][f"{split}_loss"] = rows[i][f"{name}/loss"] if has else None
        for k, (loss, error) in module.test_error_mc(ks).items():
            i = ks.index(k)
            out[i]["test_error_mc"], out[i]["test_loss_mc"] = error, loss
        for i, k in enumerate(ks):
            out[i]["zero_weight_fraction"] = rows[i]["weights/zero_fraction"]
            out[i]["label_noise_fraction"] = data.label_noise[k]
            out[i] |= {key: v for key, v in rows[i].items() if key.startswith(("act/", "probe/"))}
        return out

    # -- ends ------------------------------------------------------------------------------
    def _diverged(self, m: Member, message: str) -> None:
        m.status, m.error = DIVERGED, message

    def _done(self, k: int) -> bool:
        m, nb = self.members[k], self.module.data.batches_per_epoch[k]
        if m.status != RUNNING:
            return True
        max_steps, max_epochs = self.limits
        if max_steps > 0 and m.step >= max_steps:
            return True
        return max_epochs is not None and m.step // nb >= max_epochs and m.step % nb == 0

    def _save(self, k: int) -> None:
        if self.s.checkpoint.enabled:
            with timing.phase("write"):
                state = self.module.member_state(k)
                self.members[k].save_checkpoint(state, self.module, {"best_val": self.best_val[k]})

    def _end_metrics(self, k: int) -> dict:
        m = self.members[k]
        return {
            "steps": m.step,
            "epochs": -(-m.step // self.module.data.batches_per_epoch[k]),  # begun
            "steps_to_fit": steps_to_fit(m.history, self.s.fit_threshold),
        }

    def _interrupt(self, why: str) -> None:
        for k, m in enumerate(self.members):
            self._save(k)
            m.status, m.error = INTERRUPTED, f"interrupted at step {m.step} ({why}); rerun"
            m.error += " to resume"
            self.summaries[str(m.out_dir)] = m.write_summary(self._end_metrics(k), self.stack_info)
            m.close_loggers({})
        self.members = []

    def _finish(self, ended: list[int]) -> None:
        """Final metrics and summaries of the members in ``ended``, which leave the stack."""
        if not ended:
            return
        good = [k for k in ended if self.members[k].status in (RUNNING, FITTED)]
        unevaluated = [k for k in good if self.members[k].step not in self.members[k].rows]
        with timing.phase("eval"):
            if unevaluated:  # stopped between evaluations
                self._evaluate(unevaluated)
            finals = dict(zip(good, self._final_metrics(good), strict=True)) if good else {}
        with timing.phase("write"):  # summaries, loggers, model.pt
            for k in ended:
                m = self.members[k]
                metrics: dict = {}
                if k in finals:
                    metrics = finals[k]
                    if not math.isfinite(metrics["train_loss"]):
                        m.status = DIVERGED
                        m.error = f"training loss is {metrics['train_loss']} after training"
                    else:
                        m.status = COMPLETED
                metrics |= self._end_metrics(k)
                self.summaries[str(m.out_dir)] = m.write_summary(metrics, self.stack_info)
                if m.status == COMPLETED:
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
                if m.status == COMPLETED:
                    if self.s.checkpoint.enabled and self.s.checkpoint.keep:
                        self._save(k)  # its final state, to resume from (train on)
                    m.finished(self.module.net.member_state_dict(k), self.s.checkpoint.keep)
        keep = [k for k in range(len(self.members)) if k not in ended]
        self.members = [self.members[k] for k in keep]
        self.best_val = [self.best_val[k] for k in keep]
        if keep:
            self.module.keep(keep)


class StepsBar(TQDMProgressBar):
    """Lightning's tqdm bar over the steps of the stack's longest member (members have
    their own epochs, so the Trainer runs one endless epoch)."""

    def on_train_epoch_start(self, trainer, module) -> None:
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.total = trainer.max_steps if trainer.max_steps > 0 else None
        k = module.num_members
        bar.set_description(f"training {k} member{'s' * (k > 1)}")


def _limits(trainer_cfg) -> tuple[int, int | None]:
    """(max_steps, max_epochs) with Lightning's defaults: 1000 epochs unless max_steps."""
    max_steps, max_epochs = int(trainer_cfg.get("max_steps", -1)), trainer_cfg.get("max_epochs")
    if max_epochs is None:
        max_epochs = 1000 if max_steps == -1 else None
    elif max_epochs == -1:
        max_epochs = None
    return max_steps, max_epochs


def steps_to_fit(history: list[dict], threshold: float) -> int | None:
    """First evaluated step at which the training error (%) was <= ``threshold``."""
    for row in history:
        error = row.get("train_eval/error", row.get("train/error_epoch", row.get("train/error")))
        if error is not None and error <= threshold:
            return int(row["step"])
    return None
