"""The member-aware ``torch.optim.Optimizer`` base: one param group of (K, ...) tensors, per-member
hyperparameters as (K,) tensors, coefficient blocks uploaded only on change, and a member's
state saved, moved or dropped (``state_of`` / ``load_state_of`` / ``keep``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import optimizer as _torch_optim

_profiling = torch._C._autograd._profiler_enabled

PerMember = float | Sequence[float] | Mapping[int, float] | Tensor


def select_members(t: Tensor, idx: Tensor) -> Tensor:
    """``t.index_select(0, idx)`` in ``t``'s memory layout (a member linear weight stays
    in-major)."""
    picked = t.index_select(0, idx)
    like = t[: len(idx)]
    return picked if picked.stride() == like.stride() else torch.empty_like(like).copy_(picked)


def _hyper(name: str) -> property:
    """A per-member hyperparameter as a list of floats; assigning calls set_hyperparameters."""
    return property(
        lambda self: list(self._sync()[name]),
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
    value = value.tolist() if isinstance(value, Tensor) else value
    values = set(map(float, value)) if isinstance(value, Sequence) else {float(value)}
    if len(values) != 1:
        raise ValueError(f"{name} must be the same for all members, got {value}")
    return values.pop()


def _expand(name: str, value: Any, members: int, current: list | None = None) -> list[float]:
    """A scalar, K values or ``{member: value}`` (changing ``current``) → K floats."""
    if isinstance(value, Mapping):  # only changes existing values
        new = list(current or ())
        for k, v in value.items():
            new[int(k)] = float(v)
        return new
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != members:
            raise ValueError(f"{name}: {len(value)} values for {members} members")
        return [float(v) for v in value]
    return [float(value)] * members


class _MemberOptimizer(torch.optim.Optimizer):
    """One param group of (K, ...) tensors; in it per-member values as (K,) CPU tensors (float64
    hyperparameters, bool flags), ``steps`` as K ints, shared values as floats. ``_sync``
    mirrors them on the host, re-reading those whose object or tensor version changed. After
    ``__init__`` methods mutate their containers, never rebind attributes: Lightning's optimizer
    wrapper forwards the attributes it lacks, so it shares them."""

    per_member: tuple[str, ...] = ()  # per-member hyperparameters
    shared: tuple[str, ...] = ()  # hyperparameters all members share
    flags: tuple[str, ...] = ()  # per-member bookkeeping
    state_names: tuple[str, ...] = ()  # per-parameter state tensors

    def __init__(
        self, params: Iterable[Tensor], members: int | None, hyper: dict, shared: dict
    ) -> None:
        params = list(params)
        if not params or not all(isinstance(p, Tensor) for p in params):
            raise TypeError("params must be a non-empty list of stacked tensors (no groups)")
        k = int(params[0].shape[0] if members is None and params[0].dim() else members or 0)
        for p in params:
            if p.dim() < 1 or p.shape[0] != k:
                raise ValueError(f"shape {tuple(p.shape)}: no member axis {k}")
        hyper = {n: torch.tensor(_expand(n, v, k), dtype=torch.float64) for n, v in hyper.items()}
        defaults = {n: v.clone() for n, v in hyper.items()} | shared
        group = {"params": params, **hyper, "steps": [0] * k}
        super().__init__(
            [group | {f: torch.zeros(k, dtype=torch.bool) for f in self.flags}], defaults
        )
        self._init_mirrors()

    def _init_mirrors(self) -> None:
        self._kind = type(self).__name__
        self._host: dict[str, Any] = {}  # host mirror of the group's values
        self._seen: dict[str, tuple[Any, int | None]] = {}  # (object, tensor version) read
        self._cache: dict[Any, Any] = {}  # coefficient blocks on the device
        self._dev: dict[str, Tensor] = {}  # ``steps`` on the device (Adam)
        for name in (*self.per_member, *self.shared, *self.flags, "steps"):
            self._read(self.param_groups[0], name, self.param_groups[0][name])

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_seen" not in self.__dict__:  # unpickled or deep-copied: rebuild the mirrors
            self._init_mirrors()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError(f"{type(self).__name__} takes exactly one parameter group")
        super().add_param_group(param_group)

    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's, without its profiler label and per-device grouping where grads are only
        set to None (that bookkeeping is per step, and a small net's step is short)."""
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for p in self.params:
            p.grad = None

    @property
    def members(self) -> int:
        return int(self.params[0].shape[0])

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    def _sync(self) -> dict[str, Any]:
        """Re-read each group value whose object or tensor version changed; the host mirror."""
        group = self.param_groups[0]
        for name, (seen, version) in self._seen.items():
            v = group[name]
            if v is not seen or (version is not None and v._version != version):
                self._read(group, name, v)
        return self._host

    def _read(self, group: dict[str, Any], name: str, v: Any) -> None:
        if name in self.shared:
            new = group[name] = _scalar(name, v)
        elif name == "steps":  # a list of ints: a new one each step is cheaper than a tensor op
            new = group[name] = [int(s) for s in _expand(name, v, self.members)]
            self._dev.clear()
        else:
            dtype, k = torch.bool if name in self.flags else torch.float64, self.members
            if not (isinstance(v, Tensor) and v.dtype == dtype and v.shape == (k,) and v.is_cpu):
                floats = _expand(name, v, k, self._host.get(name))
                v = group[name] = torch.tensor(floats, dtype=dtype)
            new = v.tolist()
        v = group[name]
        self._seen[name] = (v, v._version if isinstance(v, Tensor) else None)
        if name != "steps" and new != self._host.get(name):
            self._host[name] = new
            self._cache.clear()

    def set_hyperparameters(self, **per_member: PerMember) -> None:
        """Per-member values: a scalar, K values or ``{member: value}``; unchanged: no upload."""
        host, group = self._sync(), self.param_groups[0]
        for name, value in per_member.items():
            if name not in self.per_member:
                raise TypeError(f"{type(self).__name__} has no per-member {name!r}")
            new = _expand(name, value, self.members, host[name])
            if new != host[name]:
                group[name] = torch.tensor(new, dtype=torch.float64)
        self._sync()

    @property
    def hyperparameters(self) -> dict[str, list[float]]:
        return {name: list(self._sync()[name]) for name in self.per_member}

    @property
    def steps(self) -> list[int]:
        """Each member's own update count."""
        return list(self.param_groups[0]["steps"])

    lr = _hyper("lr")

    def _coefficients(self, dtype: torch.dtype, dim: int = 1) -> dict[str, Tensor]:
        """``_rows()`` as (K, 1, ...) ``dtype`` tensors, uploaded and cast only after a change."""
        c = self._cache
        if "block" not in c:
            rows = self._rows()
            c["names"] = list(rows)
            c["block"] = _upload(list(rows.values()), self.device).view(len(rows), self.members)
        if (dtype, dim) not in c:
            block = c["block"].to(dtype).view(*c["block"].shape, *([1] * (dim - 1)))
            c[dtype, dim] = dict(zip(c["names"], block, strict=True))
        return c[dtype, dim]

    def _per_param(self, params: list[Tensor], name: str) -> list[Tensor]:
        """Coefficient ``name`` as a (K, 1, ...) view for each of ``params`` (cached)."""
        key = ("per_param", name, *((p.dtype, p.dim()) for p in params))
        if key not in self._cache:
            self._cache[key] = [self._coefficients(p.dtype, p.dim())[name] for p in params]
        return self._cache[key]

    def _buffers(self, p: Tensor, *names: str) -> list[Tensor]:
        st = self.state[p]
        for name in names:
            if name not in st:
                st[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return [st[name] for name in names]

    def _count_step(self) -> None:
        group = self.param_groups[0]
        steps = group["steps"] = [s + 1 for s in group["steps"]]
        self._seen["steps"] = (steps, None)
        if "steps" in self._dev:
            self._dev["steps"] += 1

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter with a grad; returns ``closure()``'s loss if given."""
        hooks = self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
        hooks = hooks or _torch_optim._global_optimizer_pre_hooks
        if hooks or _torch_optim._global_optimizer_post_hooks or _profiling():
            return self._hooked_step(closure)
        return self._step(closure)

    # torch wraps step() to run its step hooks under a profiler label, ~20 us a step on 2 CPU
    # threads; here that wrapper (_hooked_step) runs only when there are hooks or a profiler
    step.hooked = True  # type: ignore[attr-defined]

    @torch.no_grad()
    def _step(self, closure: Callable[[], Any] | None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._sync()
        self._update()
        return loss

    def state_of(self, k: int) -> dict[str, Any]:
        """Member ``k``'s hyperparameters, step count and state slices, cloned to CPU."""
        host = self._sync()
        return {
            "optimizer": self._kind,
            "hyperparameters": {name: host[name][k] for name in self.per_member},
            "flags": {name: host[name][k] for name in self.flags},
            "steps": self.steps[k],
            "state": [
                {n: t[k].to("cpu", copy=True) for n, t in self.state.get(p, {}).items()}
                for p in self.params
            ],
        }

    def load_state_of(self, k: int, state: dict[str, Any]) -> None:
        """Put a member saved by ``state_of`` (any stack, same architecture) at position ``k``."""
        if state["optimizer"] != self._kind:
            raise ValueError(f"state of a {state['optimizer']}, not a {self._kind}")
        if len(state["state"]) != len(self.params):
            raise ValueError("saved state has a different number of parameters")
        self.set_hyperparameters(**{n: {k: v} for n, v in state["hyperparameters"].items()})
        group = self.param_groups[0]
        for name, value in [*state["flags"].items(), ("steps", int(state["steps"]))]:
            group[name] = group[name].copy() if name == "steps" else group[name].clone()
            group[name][k] = value  # in a copy: state dicts taken before keep theirs
        for p, saved in zip(self.params, state["state"], strict=True):
            for name in self.state_names:
                if name in saved:
                    self._buffers(p, name)[0][k].copy_(saved[name])
                elif name in self.state.get(p, {}):
                    self.state[p][name][k].zero_()
        self._sync()

    def keep(self, idx: Sequence[int], new_params: Iterable[Tensor]) -> None:
        """Keep only members ``idx`` (in that order); ``new_params`` replace the old params."""
        idx = [int(i) for i in idx]
        if any(not 0 <= i < self.members for i in idx):
            raise IndexError(f"members {idx} out of range for {self.members}")
        new_params, old = list(new_params), self.params
        shapes = [(len(idx), *p.shape[1:]) for p in old]
        if [tuple(p.shape) for p in new_params] != shapes:
            raise ValueError(f"new_params must be aligned with the old parameters: {shapes}")
        self._sync()
        rows, group, state = torch.tensor(idx), self.param_groups[0], {}
        for p, q in zip(old, new_params, strict=True):
            if p in self.state:  # in the parameter's layout, as zeros_like made it
                state[q] = {
                    n: select_members(t, rows.to(t.device)) for n, t in self.state[p].items()
                }
        self.state.clear()
        self.state.update(state)
        group["params"] = new_params
        for name in (*self.per_member, *self.flags):
            group[name] = group[name].index_select(0, rows)
        group["steps"] = [group["steps"][i] for i in idx]
        self._sync()


_MemberOptimizer._hooked_step = torch.optim.Optimizer.profile_hook_step(_MemberOptimizer._step)
