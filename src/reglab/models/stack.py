"""Stacked training: K networks of one architecture ("members") as one module, through
``torch.func`` — the model-ensembling recipe (``stack_module_state``, ``functional_call``,
``vmap``), so any ``nn.Module`` stacks without per-layer code.

:class:`StackedNet` keeps a copy of the architecture (``body``) whose every parameter and
buffer carries a leading *member axis* of size K, and a weightless template on the meta
device. Its forward maps member k's tensors and member k's inputs through the template,
vectorized by ``vmap(randomness="error")``; what ``functional_call`` does is done by
binding each tensor into its precomputed slot of the template (no per-call name lookups).
Nothing random may happen inside (reglab's dropout draws counter-based masks,
:mod:`reglab.models.dropout`), and each member's batchnorm keeps its own running
statistics. Member k is exactly the solo model it was stacked from;
:meth:`StackedNet.member_state_dict` gives it back.

A stack of one may skip vmap (``vmap_solo``). With ``"auto"`` (the default) its forward
calls the template on the member's own tensors under
:class:`~reglab.models.vmap_order.VmapOrder`, which splits fused ops as vmap's batching
rules do, once :meth:`StackedNet.choose_solo_path` has found that bitwise equal to the
vmapped call on a trial step; ``True`` always vmaps; ``False`` always calls the net as
written (PyTorch's fused kernels: the fastest, also a model vmap refuses), its result
equal to its stacked twin's only to rounding.

Linear weights (2-d per member) are stored *in-major* (strides of (K, in, out), seen as
(K, out, in)): the layout in which the batched matmul's backward produces their gradient,
so autograd hands it over instead of transposing megabytes into place at every step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import vmap

from reglab.models.dropout import dropout_layers, set_stochastic
from reglab.models.vmap_order import VmapOrder
from reglab.optim import select_members

_TRIAL_PARTS = ("output", "gradients", "state", "evaluation")


class StackError(ValueError):
    """The models cannot be stacked (different architectures, or a module vmap refuses)."""


def _in_major(t: Tensor) -> Tensor:
    return t.transpose(1, 2).contiguous().transpose(1, 2) if t.dim() == 3 else t


def _signature(model: nn.Module) -> list[tuple]:
    """What must agree between members: module types, tensor names, shapes and dtypes."""
    sig: list[tuple] = [(n, type(m).__name__) for n, m in model.named_modules()]
    sig += [(n, tuple(t.shape), t.dtype) for n, t in model.named_parameters()]
    sig += [(n, tuple(t.shape), t.dtype) for n, t in model.named_buffers()]
    return sig


def _slot(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, leaf = name.rpartition(".")
    return root.get_submodule(module_name), leaf


class StackedNet(nn.Module):
    """K copies of one architecture; member k ↔ index k of every tensor (see module doc)."""

    def __init__(self, models: Sequence[nn.Module], vmap_solo: bool | str = "auto") -> None:
        super().__init__()
        if vmap_solo not in (True, False, "auto"):
            raise ValueError(f"vmap_solo={vmap_solo!r}: allowed are true, false, auto")
        if not models:
            raise StackError("no models to stack")
        first = _signature(models[0])
        for k, model in enumerate(models[1:], start=1):
            other = _signature(model)
            if other != first:
                diff = next((a, b) for a, b in zip(first, other, strict=False) if a != b)
                raise StackError(f"member {k} has another architecture: {diff[1]} vs {diff[0]}")
        self.body = copy.deepcopy(models[0])
        # A weightless copy to call with each member's tensors; not a submodule, so it
        # holds no state and never moves.
        self.__dict__["template"] = copy.deepcopy(models[0]).to("meta")
        states = [dict(m.named_parameters()) | dict(m.named_buffers()) for m in models]
        with torch.no_grad():
            for name, _ in list(self.body.named_parameters()):
                module, leaf = _slot(self.body, name)
                stacked = torch.stack([s[name].detach() for s in states])
                module._parameters[leaf] = nn.Parameter(_in_major(stacked))
            for name, _ in list(self.body.named_buffers()):
                module, leaf = _slot(self.body, name)
                module._buffers[leaf] = torch.stack([s[name] for s in states])
        # Where each state tensor is in the body (``sources``: (module's table, leaf), read
        # at every forward: keep() and .to() replace tensors in place) and where it goes in
        # the template (``slots``: (module, leaf, is parameter, index into sources)); a tied
        # tensor has one source and several slots. refresh() picks the slots a forward
        # binds (``bound``) and the sources it reads (``used``).
        index = {id(t): i for i, t in enumerate(self.state_tensors())}
        is_param = {id(t) for t in self.body.parameters()}
        named = [*self.body.named_parameters(remove_duplicate=False)]
        named += [*self.body.named_buffers(remove_duplicate=False)]
        sources, slots = [None] * len(index), []
        for name, t in named:
            module, leaf = _slot(self.body, name)
            table = module._parameters if id(t) in is_param else module._buffers
            sources[index[id(t)]] = (table, leaf)
            slots.append((*_slot(self.template, name), id(t) in is_param, index[id(t)]))
        self.__dict__["sources"], self.__dict__["slots"] = sources, slots
        self.__dict__["dropout"] = [layer for _, layer in dropout_layers(self.body)]
        # A stack of one without vmap; "auto" waits for choose_solo_path().
        self.direct = len(models) == 1 and vmap_solo is False
        self.vmap_solo = vmap_solo if len(models) == 1 else True
        self.refresh()

    @property
    def num_members(self) -> int:
        return next(iter(self.state_tensors())).shape[0]

    def state_tensors(self) -> Iterator[Tensor]:
        yield from self.body.parameters()
        yield from self.body.buffers()

    def refresh(self) -> None:
        """After members changed: which dropout layers keep every unit in every member
        (p = 1: skipped), and so which tensors a forward binds."""
        stacked, idle = dict(dropout_layers(self.body)), set()
        for name, layer in dropout_layers(self.template):
            layer.all_retained = stacked[name].all_retained = bool((stacked[name].p == 1).all())
            if layer.all_retained:  # its forward returns its input: its buffers stay unbound
                idle.add(id(layer))
        bound = [slot for slot in self.slots if id(slot[0]) not in idle]
        used = sorted({slot[3] for slot in bound})
        position = {i: j for j, i in enumerate(used)}
        self.__dict__["bound"] = [(*slot[:3], position[slot[3]]) for slot in bound]
        self.__dict__["used"] = [self.sources[i] for i in used]

    def train(self, mode: bool = True) -> StackedNet:
        super().train(mode)
        self.template.train(mode)
        return self

    def set_stochastic(self, stochastic: bool) -> None:
        """Random dropout masks at evaluation too (Monte-Carlo averaging, Srivastava §7.5)."""
        set_stochastic(self.template, stochastic)

    def set_mask_counter(self, counter: int | Tensor) -> None:
        """Every member's dropout-mask counter: its step, or ``-(i + 1)`` for MC pass i."""
        value = torch.as_tensor(counter)
        for layer in self.dropout:
            if not layer.all_retained:  # (its counter is never read)
                layer.counter.copy_(value.expand_as(layer.counter))

    # -- forward ---------------------------------------------------------------------------
    def _tensors(self, members: Tensor | None) -> tuple[Tensor, ...]:
        tensors = tuple(table[leaf] for table, leaf in self.used)  # what the forward reads
        if members is not None:  # evaluation of some members: copies, nothing written back
            tensors = tuple(t.index_select(0, members) for t in tensors)
        return tensors

    def _call(self, tensors: tuple[Tensor, ...], x: Tensor) -> Tensor:
        """The template's forward of ``x`` with ``tensors`` (one member's, under vmap) in
        its slots; the meta placeholders go back after."""
        template = self.template
        if template.training != self.training:  # Lightning restores modes by attribute
            template.train(self.training)
        saved = []
        for module, leaf, param, i in self.bound:
            table = module._parameters if param else module._buffers
            saved.append(table[leaf])
            table[leaf] = tensors[i]
        try:
            return template(x)
        finally:
            for (module, leaf, param, _), old in zip(self.bound, saved, strict=True):
                (module._parameters if param else module._buffers)[leaf] = old

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """Outputs (K, N, ...) of inputs x (K, N, ...), member k's input through member k;
        with ``members`` (a LongTensor, evaluation only) x holds those members' inputs."""
        return self._run(self._tensors(members), x)

    def _run(self, tensors: tuple[Tensor, ...], x: Tensor) -> Tensor:
        if not self.direct:
            return vmap(self._call, randomness="error")(tensors, x)
        return self._direct(tuple(t.squeeze(0) for t in tensors), x)  # views, and backward

    def _direct(self, member: tuple[Tensor, ...], x: Tensor) -> Tensor:
        """A stack of one called directly with its member's (solo-shaped) tensors."""
        if self.vmap_solo is False:  # the net as written: PyTorch's fused kernels
            return self._call(member, x[0]).unsqueeze(0)
        with VmapOrder():  # (only the template's own ops go through the mode)
            return self._call(member, x[0]).unsqueeze(0)

    def forward_recording(
        self, x: Tensor, members: Tensor, kinds: tuple[type[nn.Module], ...]
    ) -> tuple[Tensor, dict[str, tuple[Tensor, Tensor]]]:
        """:meth:`forward` of ``members`` plus the input and output (k, N, ...) of every
        layer of the ``kinds`` given (activation statistics, :mod:`reglab.evaluation`)."""
        layers = [(n, m) for n, m in self.template.named_modules() if isinstance(m, kinds)]

        def call(tensors, x):
            records: dict[str, tuple[Tensor, Tensor]] = {}
            hooks = [
                m.register_forward_hook(
                    lambda m, i, o, name=name: records.__setitem__(name, (i[0], o))
                )
                for name, m in layers
            ]
            try:
                return self._call(tensors, x), records
            finally:
                for hook in hooks:
                    hook.remove()

        return vmap(call, randomness="error")(self._tensors(members), x)

    def check(self, example: Tensor) -> None:
        """A trial forward (training mode, on copies) of ``example`` (K, N, ...); a module
        that vmap cannot run per member is named in a :class:`StackError`."""
        tensors = tuple(t.detach().clone() for t in self._tensors(None))
        active: list[str] = []  # the modules whose forward is running, innermost last

        def enter(name: str):
            return lambda module, args: active.append(name)

        def leave(module, args, output) -> None:
            active.pop()

        hooks = []
        for name, m in self.template.named_modules():
            hooks += [m.register_forward_pre_hook(enter(name)), m.register_forward_hook(leave)]
        was = self.training
        self.train(True)
        try:
            with torch.no_grad():
                self._run(tensors, example)
        except Exception as error:  # any failure is the reason
            kind = type(self.template.get_submodule(active[-1] if active else "")).__name__
            where = f"{active[-1]} ({kind})" if active and active[-1] else kind
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            how = "on a trial batch" if self.direct else "per member under torch.func.vmap"
            raise StackError(f"{where}: cannot run {how}: {reason}") from None
        finally:
            self.train(was)
            for hook in hooks:
                hook.remove()

    def choose_solo_path(self, batch: Tensor) -> str | None:
        """``vmap_solo="auto"`` at K = 1: one training step (output, gradients, updated
        buffers) and one evaluation forward of ``batch``, on copies, through vmap and
        directly; the direct call is kept when all are bitwise equal. Returns what differed
        (the stack stays vmapped), or None."""
        if self.vmap_solo != "auto" or self.direct:  # not asked, or already chosen
            return None
        vmapped, direct = self._trial(False, batch), self._trial(True, batch)
        for what, a, b in zip(_TRIAL_PARTS, vmapped, direct, strict=True):
            if not all(torch.equal(u, v) for u, v in zip(a, b, strict=True)):
                return f"the direct call's {what} differs from vmap's in rounding"
        self.direct = True
        return None

    def _trial(self, direct: bool, batch: Tensor) -> list[list[Tensor]]:
        was = self.direct, self.training
        tensors = [
            table[leaf].detach().clone().requires_grad_(table[leaf].requires_grad)
            for table, leaf in self.used
        ]
        params = [t for t in tensors if t.requires_grad]
        try:
            self.direct = direct
            out = self.train(True)._run(tuple(tensors), batch)
            cotangent = torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)
            grads = torch.autograd.grad(out, params, cotangent.to(out.dtype), allow_unused=True)
            with torch.no_grad():
                evaluated = self.train(False)._run(tuple(t.detach() for t in tensors), batch)
        finally:
            self.direct = was[0]
            self.train(was[1])
        grads = [g for g in grads if g is not None]
        return [[out.detach()], grads, [t.detach() for t in tensors], [evaluated]]

    # -- members ---------------------------------------------------------------------------
    def member_state_dict(self, k: int) -> dict[str, Tensor]:
        """Member k's state_dict, named and shaped as its solo model's (on the CPU)."""
        return {
            name: t[k].detach().to("cpu", copy=True).contiguous()
            for name, t in self.body.state_dict().items()
        }

    @torch.no_grad()
    def load_member_state_dict(self, k: int, state: dict[str, Tensor]) -> None:
        """Overwrite member k with a solo model's state_dict (the inverse of the above)."""
        targets = self.body.state_dict(keep_vars=True)
        if set(targets) != set(state):
            missing, extra = set(targets) - set(state), set(state) - set(targets)
            raise KeyError(f"member state: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for key, value in state.items():
            targets[key][k].copy_(value)

    @torch.no_grad()
    def keep(self, members: Sequence[int] | Tensor) -> None:
        """Keep only ``members`` (in that order), in place. Parameters keep their slots, so
        ``parameters()`` lists the new ones in the old order; gradients are dropped."""
        device = next(self.state_tensors()).device
        idx = torch.as_tensor(members, dtype=torch.int64, device=device)
        for module in self.body.modules():
            for name, old in list(module._parameters.items()):
                if old is not None:
                    new = nn.Parameter(select_members(old, idx), old.requires_grad)
                    module._parameters[name] = new
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    module._buffers[name] = buf.index_select(0, idx)
        self.refresh()
