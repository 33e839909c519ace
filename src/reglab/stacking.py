"""Which jobs of a sweep can train together as one stacked model, and how many at once.

A *stack* trains K compatible jobs ("members") as one vectorized model. Members may
differ only in :data:`STACKABLE` keys (seed, dropout rates, regularizer strengths, corruption,
training-set size, optimizer hyperparameters, user notes) and in keys that do not change a
result (:data:`reglab.rerun.HOW_KEYS`), except the :data:`MUST_MATCH` keys, which decide
how the one stacked model runs. :func:`stack_key` says which jobs are compatible,
:func:`estimate_bytes` what a member costs on the training device and
:func:`plan_stacks` groups a sweep's jobs into stacks.

Imports neither torch nor Lightning: Hydra's launcher plugin imports this at start-up.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from reglab import dotted
from reglab.datasets import DATASETS, DataSet, cropped
from reglab.rerun import HOW_CONFIG_KEYS

#: Keys whose values may differ between the members of one stack (a group name, such as
#: ``corruption``, means the whole group: its kind and its parameters).
#: ``regularizer.*`` means every number under ``regularizer`` (its strengths, a user's
#: regularizer's too) but the selection flags of :data:`REGULARIZER_SELECTION`.
STACKABLE: tuple[str, ...] = (
    "seed",
    "dropout.p_input",
    "dropout.p_hidden",
    "regularizer.*",
    "corruption",
    "data.train_size",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.betas",
    "optimizer.weight_decay",
    "meta",
)

#: Regularizer arguments that choose parameters, not strengths: never stackable
#: (``reglab.regularizers.SELECTION``; this module imports no torch).
REGULARIZER_SELECTION: tuple[str, ...] = ("include_biases", "include_batchnorm")

#: Keys that only pick values of other keys through interpolation (the experiments'
#: ``arm`` and ``fixed_pn.p`` tables). The values they pick stay in the stack key, so
#: leaving the selectors out stacks exactly what those values allow: label_corruption's
#: three arms differ only in dropout.p_hidden and regularizer.lam and share stacks.
SELECTORS: tuple[str, ...] = ("arm", "fixed_pn.p")

#: Result-neutral keys (in HOW_KEYS) that must still be equal inside a stack: one stacked
#: model has one Trainer (precision, device, progress bar, summary, logging cadence,
#: profiler, root folder), compile setting, logger set, data placement, evaluation batch
#: and checkpoint policy.
MUST_MATCH: tuple[str, ...] = (
    "trainer.precision",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.profiler",
    "trainer.default_root_dir",
    "compile",
    "vmap_solo",
    "logger",
    "data.on_device",
    "data.eval_batch_size",
    "checkpoint",
)

#: The callbacks entries of reglab's own (conf/callbacks/default.yaml); a job with any
#: other Lightning callback trains in a stack of its own.
REGLAB_CALLBACKS: tuple[str, ...] = ("members",)

#: Logger settings that name the job itself (its folder, its W&B run): never compared.
PER_JOB_LOGGER_KEYS: tuple[str, ...] = ("save_dir", "dir", "name", "version", "id")

FLOAT = 4  # bytes of a float32
ACTIVATION_COPIES = 3  # forward output, its gradient, and a saved input / mask per layer
INDEX_AND_LABEL = 16  # an int64 training index and an int64 label per training example


def stack_key(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a resolved config without its stackable and neutral keys.

    Two jobs may share a stack exactly when their stack keys are equal. Removed:
    :data:`STACKABLE`, :data:`SELECTORS` and every :data:`~reglab.rerun.HOW_KEYS` key but
    :data:`MUST_MATCH`; inside ``logger`` the per-job settings (:data:`PER_JOB_LOGGER_KEYS`:
    the job's folder, its W&B run name) are left out, the rest must match.
    """
    kept = {key: dotted.get(config, key, dotted.MISSING) for key in MUST_MATCH}
    tree = copy.deepcopy(dict(config))
    tree.pop("hydra", None)
    for key in (*HOW_CONFIG_KEYS, *STACKABLE, *SELECTORS):
        if key.endswith(".*"):
            _pop_numbers(tree, key[:-2], REGULARIZER_SELECTION)
        else:
            dotted.pop(tree, key)
    for key, value in kept.items():
        if value is not dotted.MISSING:
            dotted.put(tree, key, copy.deepcopy(value))
    loggers = tree.get("logger")
    if isinstance(loggers, Mapping):
        tree["logger"] = {
            name: (
                {k: v for k, v in node.items() if k not in PER_JOB_LOGGER_KEYS}
                if isinstance(node, Mapping)
                else node
            )
            for name, node in loggers.items()
        }
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), default=str)


# -- memory -------------------------------------------------------------------------------


def _facts(config: Mapping[str, Any]) -> DataSet:
    """The data set's facts (:mod:`reglab.datasets`; MNIST's for a name it lacks)."""
    return DATASETS.get(str((config.get("data") or {}).get("name")), DATASETS["mnist"])


def _data_shape(config: Mapping[str, Any]) -> tuple[int, int, tuple[int, int, int]]:
    """(training images before the hold-out, test images, (C, H, W) after data.crop)."""
    facts = _facts(config)
    shape = cropped(facts.shape, (config.get("data") or {}).get("crop"))
    return facts.train_size, facts.test_size, shape


def _train_examples(config: Mapping[str, Any]) -> int:
    data = config.get("data") or {}
    n_train, _, _ = _data_shape(config)
    remaining = max(1, n_train - int(data.get("val_size") or 0))
    size = data.get("train_size")
    return min(int(size), remaining) if size else remaining


def _layers(config: Mapping[str, Any]) -> tuple[int, list[int]]:
    """(parameter count, activation size per example of every layer output incl. input)."""
    model = config.get("model") or {}
    _, _, (c, h, w) = _data_shape(config)
    batchnorm = bool(model.get("batchnorm"))
    params, sizes = 0, [c * h * w]
    if "channels" in model:  # CNN: same-padded conv blocks, each pooled by `pool`
        k, pool = int(model.get("kernel_size", 5)), max(1, int(model.get("pool", 1)))
        for c_out in map(int, model.get("channels") or []):
            params += c * c_out * k * k + c_out + (4 * c_out if batchnorm else 0)
            sizes.append(c_out * h * w)
            h, w, c = max(1, h // pool), max(1, w // pool), c_out
            if pool > 1:
                sizes.append(c * h * w)
        widths = [c * h * w, *map(int, model.get("fc") or [])]
    else:  # MLP
        widths = [c * h * w, *map(int, model.get("hidden") or [])]
    dims = [*widths, _facts(config).num_classes]
    for n_in, n_out in itertools.pairwise(dims):
        params += n_in * n_out + n_out
    hidden = dims[1:-1]
    if batchnorm:  # scale, shift and two running statistics per unit
        params += 4 * sum(hidden)
    sizes += dims[1:]
    return params, sizes


def _optimizer_states(config: Mapping[str, Any]) -> int:
    """Tensors the optimizer keeps per parameter: 2 for Adam(W), 1 for SGD with momentum."""
    optimizer = config.get("optimizer") or {}
    target = str(optimizer.get("_target_", "")).rsplit(".", 1)[-1].lower()
    if target.startswith("adam"):
        return 2
    if target == "sgd":
        return int(bool(optimizer.get("momentum")) or bool(config.get("momentum_ramp")))
    return 1


def _corruption_bytes(config: Mapping[str, Any], n_train: int) -> int:
    """A member's private image copy: Zhang et al.'s per-member pixel corruptions."""
    _, n_test, (c, h, w) = _data_shape(config)
    pixels = c * h * w
    kind = str((config.get("corruption") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    if kind == "RandomPixels":  # uint8 training images, each with its own permutation
        return n_train * pixels
    if kind == "GaussianPixels":  # float32 noise images
        return n_train * pixels * FLOAT
    if kind == "ShuffledPixels":  # uint8 train and test images under one permutation
        return (n_train + n_test) * pixels
    return 0


def estimate_bytes(config: Mapping[str, Any]) -> int:
    """Approximate bytes one member of a stack needs on the training device:

    - parameters × 4 bytes × (1 weights + 1 gradients + optimizer states: 2 for Adam and
      AdamW, 1 for SGD with momentum, 0 for plain SGD);
    - activations: batch_size × Σ layer widths × 4 bytes × 3 (forward output, gradient,
      saved input or dropout mask), plus max(eval_batch_size, probe_size) × Σ widths × 4
      for evaluation; "widths" are the per-example sizes of the input and every layer's
      output (conv layers: channels × height × width, before and after pooling);
    - data: 16 bytes (int64 index and label) per training example, plus a private copy of
      the training images for ``random_pixels`` (uint8), ``gaussian`` (float32) and
      ``shuffled_pixels`` (uint8, test images too).

    The base images all members share are :func:`estimate_shared_bytes`, counted once per
    stack. Good to a factor of ~1.5; the launcher halves a stack that runs out anyway.
    """
    params, sizes = _layers(config)
    data = config.get("data") or {}
    batch = int(data.get("batch_size") or 100)
    evaluation = max(int(data.get("eval_batch_size") or batch), int(config.get("probe_size") or 0))
    n_train = _train_examples(config)
    weights = params * FLOAT * (2 + _optimizer_states(config))
    activations = batch * sum(sizes) * FLOAT * ACTIVATION_COPIES + evaluation * sum(sizes) * FLOAT
    member_data = n_train * INDEX_AND_LABEL + _corruption_bytes(config, n_train)
    return int(weights + activations + member_data)


def estimate_shared_bytes(config: Mapping[str, Any]) -> int:
    """Bytes a stack holds once, whatever its size: the uint8 base images and labels of
    every split with each image's mean and std, and the normalized float32 test set
    (:class:`reglab.data.stack.StackData`), of which the probe images are a view."""
    n_train, n_test, (c, h, w) = _data_shape(config)
    pixels = c * h * w
    return (n_train + n_test) * (pixels + 8 + 2 * FLOAT) + n_test * pixels * FLOAT


# -- planning -----------------------------------------------------------------------------


def plan_stacks(
    configs: Sequence[Mapping[str, Any]],
    max_members: int,
    memory_bytes: int | None,
    workers: int = 1,
) -> list[list[int]]:
    """Job indices grouped into stacks.

    Jobs with equal :func:`stack_key` form a group (groups in order of their first job,
    members in sweep order); each group is cut into as few stacks as hold at most
    ``max_members`` members and fit ``memory_bytes`` (shared bytes once plus each
    member's, None: no limit), sizes as even as memory allows. A member too big alone
    still gets a stack of its own. Then, for ``workers`` processes that take the costliest
    stack first, the costliest stack (by :func:`member_work`) is halved, every other
    member to each half, until every process has one, and further while that shortens
    the sweep, so that no process idles while another trains a second stack (3 stacks of
    10 on 2 processes: 10, 10, 5, 5).
    """
    if max_members < 1:
        raise ValueError(f"max_members={max_members}: must be >= 1")
    groups: dict[str, list[int]] = {}
    for index, config in enumerate(configs):
        key = stack_key(config)
        if set(config.get("callbacks") or {}) - set(REGLAB_CALLBACKS):
            key += f"#{index}"  # a user's Lightning callbacks see one model and its loggers
        groups.setdefault(key, []).append(index)
    stacks: list[list[int]] = []
    for members in groups.values():
        costs = [estimate_bytes(configs[i]) for i in members]
        shared = max(estimate_shared_bytes(configs[i]) for i in members)
        stacks += [
            [members[i] for i in part] for part in _split(costs, shared, max_members, memory_bytes)
        ]
    work = [member_work(c) for c in configs]

    def cost(stack: list[int]) -> int:
        return sum(work[i] for i in stack)

    while True:
        largest = max(range(len(stacks)), key=lambda i: cost(stacks[i]))
        stack = stacks[largest]
        if len(stack) < 2:
            break
        # every other member: halves of a sweep's stack mix its grid (label_corruption's
        # fast-fitting clean labels with its slow noisy ones) and so end near each other
        trial = [*stacks[:largest], stack[0::2], stack[1::2], *stacks[largest + 1 :]]
        shorter = makespan(list(map(cost, trial)), workers) < makespan(
            list(map(cost, stacks)), workers
        )
        if len(stacks) >= workers and not shorter:
            break
        stacks = trial
    return stacks


def member_work(config: Mapping[str, Any]) -> int:
    """A member's training work, roughly: parameters × updates (for balancing stacks)."""
    params, _ = _layers(config)
    trainer = config.get("trainer") or {}
    steps = int(trainer.get("max_steps") or -1)
    if steps <= 0:
        batch = int((config.get("data") or {}).get("batch_size") or 100)
        epochs = max(1, int(trainer.get("max_epochs") or 1))
        steps = epochs * -(-_train_examples(config) // batch)
    return max(1, params) * steps


def makespan(costs: Sequence[int], workers: int) -> int:
    """The longest worker's total when ``workers`` processes take the costliest job first
    (as the stacked launcher submits its stacks)."""
    loads = [0] * max(1, workers)
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads)


def _fits(costs: Sequence[int], shared: int, max_members: int, budget: int | None) -> bool:
    return len(costs) <= max_members and (budget is None or shared + sum(costs) <= budget)


def _split(
    costs: Sequence[int], shared: int, max_members: int, budget: int | None
) -> list[list[int]]:
    """Positions 0..n-1 cut into consecutive parts: greedily first, which gives the fewest
    parts, then evened out to that many parts where memory allows."""
    greedy: list[list[int]] = [[]]
    for i, cost in enumerate(costs):
        part = greedy[-1]
        if part and not _fits([*(costs[j] for j in part), cost], shared, max_members, budget):
            greedy.append([])
        greedy[-1].append(i)
    n, k = len(costs), len(greedy)
    bounds = [round(j * n / k) for j in range(k + 1)]
    even = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
    if all(_fits([costs[i] for i in part], shared, max_members, budget) for part in even):
        return even
    return greedy


def stack_bytes(configs: Sequence[Mapping[str, Any]]) -> int:
    """The estimate for one stack of these members: shared bytes once, plus each member's."""
    if not configs:
        return 0
    return max(map(estimate_shared_bytes, configs)) + sum(map(estimate_bytes, configs))


def format_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _pop_numbers(tree: dict[str, Any], key: str, keep: Sequence[str]) -> None:
    """Remove the numbers (not booleans) directly under dotted ``key``, but ``keep``."""
    node = dotted.get(tree, key)
    if isinstance(node, dict):
        for name in [k for k in node if k not in keep and not k.startswith("_")]:
            value = node[name]
            if isinstance(value, int | float) and not isinstance(value, bool):
                del node[name]


__all__ = [
    "MUST_MATCH",
    "SELECTORS",
    "STACKABLE",
    "estimate_bytes",
    "estimate_shared_bytes",
    "plan_stacks",
    "stack_bytes",
    "stack_key",
]
