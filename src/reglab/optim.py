"""Optimizers for stacked training: K members of one architecture, each with its own settings.

Every parameter has a leading member axis of size K. ``MemberSGD``/``MemberAdam``/``MemberAdamW``
apply torch.optim's single-tensor (``foreach=False``) update to each member with its own ``lr``,
``momentum``/``betas`` and ``weight_decay``, (K,) vectors broadcast as (K, 1, 1, ...). Updates are
elementwise per member, so a member can be saved (``state_of``), moved to another stack
(``load_state_of``) or dropped (``keep``) without changing anyone's trajectory.
``MemberSchedules`` runs one torch lr scheduler per member on that member's own epochs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from reglab.models.member_layers import select_members

PerMember = float | Sequence[float] | Mapping[int, float] | Tensor


def momentum_at(step: int, start: float, end: float, steps: int) -> float:
    """Momentum (SGD) or beta1 (Adam) after ``step`` updates of a linear ramp (Srivastava 2014)."""
    t = min(1.0, step / max(1, steps))
    return start + t * (end - start)


def _hyper(name: str) -> property:
    """A per-member hyperparameter as a list of floats; assigning calls set_hyperparameters."""
    return property(
        lambda self: list(self._host[name]),
        lambda self, value: self.set_hyperparameters(**{name: value}),
        doc=f"Per-member {name}.",
    )


def _master_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _upload(rows: list[list[float]], device: torch.device) -> Tensor:
    """Host rows → device tensor; pinned and non-blocking on CUDA, so the GPU is not synced."""
    t = torch.tensor(rows, dtype=_master_dtype(device))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _scalar(name: str, value: Any) -> float:
    """A hyperparameter every member shares; a sequence of equal values is accepted too."""
    values = set(map(float, value)) if isinstance(value, Sequence) else {float(value)}
    if len(values) != 1:
        raise ValueError(f"{name} must be the same for all members, got {value}")
    return values.pop()


class _MemberOptimizer:
    """Shared bookkeeping: per-member hyperparameters, step counts and state slices."""

    per_member: tuple[str, ...] = ()  # per-member hyperparameters
    state_names: tuple[str, ...] = ()  # per-parameter state tensors

    def __init__(self, params: Iterable[Tensor], members: int | None, hyper: dict) -> None:
        self.params: list[Tensor] = list(params)
        if not self.params or not all(isinstance(p, Tensor) for p in self.params):
            raise TypeError("params must be a non-empty list of stacked tensors (no groups)")
        self.members = int(self.params[0].shape[0]) if members is None else int(members)
        for p in self.params:
            if p.dim() < 1 or p.shape[0] != self.members:
                raise ValueError(f"shape {tuple(p.shape)}: no member axis {self.members}")
        self.device = self.params[0].device
        self._host: dict[str, list[float]] = {}  # hyperparameters, host mirror
        self._flags: dict[str, list[bool]] = {}  # other per-member bookkeeping
        self.steps: list[int] = [0] * self.members  # each member's own update count
        self.state: list[dict[str, Tensor]] = [{} for _ in self.params]
        self._step_t: Tensor | None = None  # ``steps`` on the device (Adam)
        self._invalidate()
        self.set_hyperparameters(**hyper)

    def _expand(self, name: str, value: Any) -> list[float]:
        if isinstance(value, Mapping):
            new = list(self._host[name])
            for k, v in value.items():
                new[int(k)] = float(v)
            return new
        if isinstance(value, Tensor):
            value = value.tolist()
        if isinstance(value, Sequence) and not isinstance(value, str):
            if len(value) != self.members:
                raise ValueError(f"{name}: {len(value)} values for {self.members} members")
            return [float(v) for v in value]
        return [float(value)] * self.members

    def set_hyperparameters(self, **per_member: PerMember) -> None:
        """Per-member values: a scalar, K values or ``{member: value}``; unchanged: no upload."""
        for name, value in per_member.items():
            if name not in self.per_member:
                raise TypeError(f"{type(self).__name__} has no per-member {name!r}")
            new = self._expand(name, value)
            if new != self._host.get(name):
                self._host[name] = new
                self._invalidate()

    @property
    def hyperparameters(self) -> dict[str, list[float]]:
        return {name: list(values) for name, values in self._host.items()}

    lr = _hyper("lr")

    def _invalidate(self) -> None:
        self._block: Tensor | None = None  # coefficient rows on the device, master dtype
        self._cast: dict[tuple[torch.dtype, int], dict[str, Tensor]] = {}

    def _coefficients(self, dtype: torch.dtype, dim: int = 1) -> dict[str, Tensor]:
        """The subclass's ``_rows()`` as (K, 1, ...) tensors for ``dim``-d parameters of
        ``dtype``; uploaded and cast only after a change."""
        if self._block is None:
            rows = self._rows()
            self._names = list(rows)
            self._block = _upload(list(rows.values()), self.device).view(len(rows), self.members)
        if (dtype, dim) not in self._cast:
            block = self._block.to(dtype).view(*self._block.shape, *([1] * (dim - 1)))
            self._cast[dtype, dim] = dict(zip(self._names, block, strict=True))
        return self._cast[dtype, dim]

    def _view(self, v: Tensor, p: Tensor) -> Tensor:
        return v.view(self.members, *([1] * (p.dim() - 1)))

    def _buffer(self, i: int, name: str) -> Tensor:
        st = self.state[i]
        if name not in st:
            st[name] = torch.zeros_like(self.params[i], memory_format=torch.preserve_format)
        return st[name]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is not None:
                p.grad = None if set_to_none else p.grad.detach().zero_()

    def state_of(self, k: int) -> dict[str, Any]:
        """Member ``k``'s hyperparameters, step count and state slices, cloned to CPU."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": {name: values[k] for name, values in self._host.items()},
            "flags": {name: values[k] for name, values in self._flags.items()},
            "steps": self.steps[k],
            "state": [{n: t[k].to("cpu", copy=True) for n, t in st.items()} for st in self.state],
        }

    def load_state_of(self, k: int, state: dict[str, Any]) -> None:
        """Put a member saved by ``state_of`` (any stack, same architecture) at position ``k``."""
        if state["optimizer"] != type(self).__name__:
            raise ValueError(f"state of a {state['optimizer']}, not a {type(self).__name__}")
        if len(state["state"]) != len(self.params):
            raise ValueError("saved state has a different number of parameters")
        self.set_hyperparameters(**{n: {k: v} for n, v in state["hyperparameters"].items()})
        for name, value in state["flags"].items():
            self._flags[name][k] = value
        self.steps[k] = int(state["steps"])
        for i, saved in enumerate(state["state"]):
            for name in self.state_names:
                if name in saved:
                    self._buffer(i, name)[k].copy_(saved[name])
                elif name in self.state[i]:
                    self.state[i][name][k].zero_()
        self._step_t = None
        self._invalidate()

    def keep(self, idx: Sequence[int], new_params: Iterable[Tensor]) -> None:
        """Keep only members ``idx`` (in that order); ``new_params`` replace the old params."""
        idx = [int(i) for i in idx]
        if any(not 0 <= i < self.members for i in idx):
            raise IndexError(f"members {idx} out of range for {self.members}")
        new_params = list(new_params)
        shapes = [(len(idx), *p.shape[1:]) for p in self.params]
        if [tuple(p.shape) for p in new_params] != shapes:
            raise ValueError(f"new_params must be aligned with the old parameters: {shapes}")
        for st in self.state:
            for name, t in st.items():  # in the parameter's layout, as zeros_like made it
                st[name] = select_members(t, torch.tensor(idx, device=t.device))
        self.params, self.members = new_params, len(idx)
        self._host = {name: [values[i] for i in idx] for name, values in self._host.items()}
        self._flags = {name: [values[i] for i in idx] for name, values in self._flags.items()}
        self.steps = [self.steps[i] for i in idx]
        self._step_t = None
        self._invalidate()


class MemberSGD(_MemberOptimizer):
    """torch.optim.SGD per member: weight decay in the grad, momentum buffer starting at the
    member's first grad once its momentum is nonzero, dampening, Nesterov."""

    per_member = ("lr", "momentum", "weight_decay", "nesterov")
    state_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: PerMember = 1e-3,
        momentum: PerMember = 0.0,
        dampening: float = 0.0,
        weight_decay: PerMember = 0.0,
        nesterov: bool | Sequence[bool] = False,
        *,
        members: int | None = None,
    ) -> None:
        self.dampening = _scalar("dampening", dampening)
        nesterov = float(nesterov) if isinstance(nesterov, bool) else nesterov
        hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, members, hyper)
        self._flags["momentum_started"] = [False] * self.members
        for m, nest in zip(self._host["momentum"], self._host["nesterov"], strict=True):
            if nest and (m <= 0 or self.dampening != 0):
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    momentum = _hyper("momentum")

    def _rows(self) -> dict[str, list[float]]:
        h, d = self._host, self.dampening
        ms = list(zip(h["momentum"], self._flags["momentum_started"], h["nesterov"], strict=True))
        return {
            "neg_lr": [-lr for lr in h["lr"]],
            "wd": h["weight_decay"],
            # buf <- a*buf + b*g: (m, 1-d) once started, (0, 1) at the first grad, (1, 0) if off
            "a": [m if m and s else float(not m) for m, s, _ in ms],
            "b": [1 - d if m and s else float(m != 0) for m, s, _ in ms],
            # direction: buf, or g + c*buf (Nesterov: c = m; momentum off: c = 0)
            "c": [m if n else 0.0 for m, _, n in ms],
            "buf": [float(m != 0 and not n) for m, _, n in ms],
        }

    @torch.no_grad()
    def step(self) -> None:
        h = self._host
        on = [m != 0 for m in h["momentum"]]
        use_buf = [a and not n for a, n in zip(on, h["nesterov"], strict=True)]
        decay = any(wd != 0 for wd in h["weight_decay"])
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            co = self._coefficients(p.dtype, p.dim())
            grad = p.grad.addcmul(p, co["wd"]) if decay else p.grad
            if any(on):
                buf = self._buffer(i, "momentum_buffer")
                buf.mul_(co["a"]).addcmul_(grad, co["b"])
                if all(use_buf):
                    grad = buf
                elif not any(use_buf):
                    grad = grad.addcmul(buf, co["c"])
                else:
                    grad = torch.where(co["buf"] != 0, buf, grad.addcmul(buf, co["c"]))
            p.addcmul_(grad, co["neg_lr"])
        self.steps = [s + 1 for s in self.steps]
        started = [s or a for s, a in zip(self._flags["momentum_started"], on, strict=True)]
        if started != self._flags["momentum_started"]:
            self._flags["momentum_started"] = started
            self._invalidate()


class MemberAdam(_MemberOptimizer):
    """torch.optim.Adam per member (L2 weight decay in the grad), with per-member step counts
    for the bias corrections. ``betas``: one (beta1, beta2) pair or one pair per member."""

    per_member = ("lr", "beta1", "beta2", "weight_decay")
    state_names = ("exp_avg", "exp_avg_sq")
    decoupled = False
    default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: PerMember = 1e-3,
        betas: Any = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: PerMember | None = None,  # None: 0 (Adam), 1e-2 (AdamW) as in torch
        *,
        members: int | None = None,
    ) -> None:
        weight_decay = self.default_weight_decay if weight_decay is None else weight_decay
        self.eps = _scalar("eps", eps)
        b1, b2 = self._split(betas)
        super().__init__(
            params, members, dict(lr=lr, beta1=b1, beta2=b2, weight_decay=weight_decay)
        )

    @staticmethod
    def _split(betas: Any) -> tuple[Any, Any]:
        if isinstance(betas, Mapping):
            return {k: b[0] for k, b in betas.items()}, {k: b[1] for k, b in betas.items()}
        if len(betas) == 2 and all(isinstance(b, int | float) for b in betas):
            return float(betas[0]), float(betas[1])
        if any(len(b) != 2 for b in betas):
            raise ValueError(f"betas must be one pair or one pair per member, got {betas}")
        return [float(b[0]) for b in betas], [float(b[1]) for b in betas]

    def set_hyperparameters(self, **per_member: Any) -> None:
        """As the base, plus ``betas``: a pair, K pairs, or ``{member: pair}``."""
        if "betas" in per_member:
            per_member["beta1"], per_member["beta2"] = self._split(per_member.pop("betas"))
        super().set_hyperparameters(**per_member)

    beta1 = _hyper("beta1")

    @property
    def betas(self) -> list[tuple[float, float]]:
        return list(zip(self._host["beta1"], self._host["beta2"], strict=True))

    def _rows(self) -> dict[str, list[float]]:
        h = self._host
        rows = {"lr": h["lr"], "beta1": h["beta1"], "beta2": h["beta2"], "wd": h["weight_decay"]}
        rows["one_minus_beta1"] = [1 - b for b in h["beta1"]]
        rows["one_minus_beta2"] = [1 - b for b in h["beta2"]]
        rows["decay"] = [1 - lr * wd for lr, wd in zip(h["lr"], h["weight_decay"], strict=True)]
        return rows

    @torch.no_grad()
    def step(self) -> None:
        self.steps = [s + 1 for s in self.steps]
        if self._step_t is None:
            self._step_t = _upload([self.steps], self.device)[0]
        else:
            self._step_t += 1
        co64 = self._coefficients(_master_dtype(self.device))
        bc1 = 1 - co64["beta1"] ** self._step_t
        bc2 = 1 - co64["beta2"] ** self._step_t
        per_step = torch.stack([-(co64["lr"] / bc1), bc2.sqrt()])  # -step_size, sqrt(bc2)
        cast = {dtype: per_step.to(dtype) for dtype in {p.dtype for p in self.params}}
        decay = any(wd != 0 for wd in self._host["weight_decay"])
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            co = self._coefficients(p.dtype, p.dim())
            neg_step_size, bc2_sqrt = (self._view(v, p) for v in cast[p.dtype])
            grad = p.grad
            if decay and self.decoupled:
                p.mul_(co["decay"])
            elif decay:
                grad = grad.addcmul(p, co["wd"])
            exp_avg, exp_avg_sq = self._buffer(i, "exp_avg"), self._buffer(i, "exp_avg_sq")
            exp_avg.lerp_(grad, co["one_minus_beta1"])
            exp_avg_sq.mul_(co["beta2"]).addcmul_(grad * co["one_minus_beta2"], grad)
            denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg * neg_step_size, denom)


class MemberAdamW(MemberAdam):
    """torch.optim.AdamW per member: decoupled weight decay ``p *= 1 - lr*wd``."""

    decoupled = True
    default_weight_decay = 1e-2


class MemberSchedules:
    """One torch lr scheduler per member, stepped at the end of that member's own epochs.

    Each runs on a private one-parameter ``torch.optim.SGD`` starting at the member's base lr,
    so torch's own schedule arithmetic is reused. ``make_scheduler``: the partial
    conf/scheduler/*.yaml gives (it takes the optimizer), or None for a constant lr.
    """

    def __init__(
        self,
        make_scheduler: Callable[[torch.optim.Optimizer], Any] | None,
        base_lrs: Iterable[float],
    ) -> None:
        self.make_scheduler = make_scheduler
        self._members = [self._new(lr) for lr in base_lrs]

    def _new(self, base_lr: float) -> tuple[torch.optim.Optimizer, Any]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(base_lr))
        scheduler = self.make_scheduler(opt) if self.make_scheduler is not None else None
        opt.step()  # no grad: a no-op that tells the scheduler the optimizer has stepped
        return opt, scheduler

    def __len__(self) -> int:
        return len(self._members)

    def epoch_end(self, k: int, metric: float | None = None) -> None:
        """Member ``k`` finished an epoch (``metric`` for ReduceLROnPlateau)."""
        scheduler = self._members[k][1]
        if scheduler is not None:
            scheduler.step() if metric is None else scheduler.step(metric)

    def lrs(self) -> list[float]:
        return [float(opt.param_groups[0]["lr"]) for opt, _ in self._members]

    def keep(self, idx: Sequence[int]) -> None:
        """Keep only members ``idx``, in that order."""
        self._members = [self._members[int(i)] for i in idx]

    def state_dict_member(self, k: int) -> dict[str, Any]:
        opt, scheduler = self._members[k]
        return {"optimizer": opt.state_dict(), "scheduler": scheduler and scheduler.state_dict()}

    def load_state_dict_member(self, k: int, state: dict[str, Any]) -> None:
        opt, scheduler = self._members[k]
        opt.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
