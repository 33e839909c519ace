"""What each part of the config may hold, known without importing torch or Lightning.

Validation runs before the heavy imports, so that a refused input takes well under a
second; the keys that reglab's own ``_target_``\\ s (and the torch classes it builds) read
are therefore listed here, and tests/test_refusal.py checks every list against the real
signatures. A ``_target_`` not listed (a class of your own) is imported and its
signature read instead.
"""

from __future__ import annotations

#: reglab.data.sources.DATASETS and reglab.models.blocks.ACTIVATIONS, by name.
DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "digits")
ACTIVATION_NAMES = ("relu", "sigmoid", "tanh")

#: Each data set's training and test images and their side (reglab.data.sources loads
#: them; tests/test_data.py checks these against the loaded data where it is on disk).
DATASET_SHAPES = {
    "mnist": (60000, 10000, 28),
    "fashion_mnist": (60000, 10000, 28),
    "cifar10": (50000, 10000, 32),
    "digits": (1437, 360, 8),  # scikit-learn's 1,797, the last 20 % as the test split
}

#: Each data set's image channels; every one has 10 classes.
DATASET_CHANNELS = {"mnist": 1, "fashion_mnist": 1, "cifar10": 3, "digits": 1}
NUM_CLASSES = 10


def data_shape(data) -> tuple[tuple[int, int, int], int]:
    """The network's input shape (C, H, W) after ``data.crop`` and the classes."""
    side = DATASET_SHAPES[data.name][2]
    side = min(side, int(data.crop)) if data.get("crop") else side
    return (DATASET_CHANNELS[data.name], side, side), NUM_CLASSES


def data_size_error(
    name: str, n_train: int, side: int, crop: int | None, val_size: int, train_size: int | None
) -> str | None:
    """Why ``data.crop``, ``data.val_size`` and ``data.train_size`` do not fit a data set
    of ``n_train`` training images of ``side`` pixels, or None. One rule for both checks:
    the config's, against :data:`DATASET_SHAPES`, and the loaded data's."""
    if crop is not None and crop > side:
        return f"data.crop={crop}: must be <= {side} (image size)"
    if val_size > n_train - 1:
        return f"data.val_size={val_size}: must be < {n_train} ({name} train size)"
    if train_size is not None and not 0 < train_size <= n_train - val_size:
        return (
            f"data.train_size={train_size}: must be in [1, {n_train - val_size}] "
            f"({name} minus data.val_size={val_size})"
        )
    return None


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")  # fmt: skip
#: The files torchvision needs under ``data.root`` (digits comes with scikit-learn).
DATASET_FILES = {
    "mnist": tuple(f"MNIST/raw/{f}" for f in _IDX),
    "fashion_mnist": tuple(f"FashionMNIST/raw/{f}" for f in _IDX),
    "cifar10": tuple(
        f"cifar-10-batches-py/{f}"
        for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
    ),
    "digits": (),
}

#: The torch.optim classes reglab has member versions of (reglab.classifier.MEMBER_OPTIMIZERS).
OPTIMIZER_TARGETS = ("torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW")

_PENALTY = ("include_biases", "include_batchnorm")
_ADAM = ("lr", "betas", "eps", "weight_decay")
_DATA = (
    "name", "root", "download", "val_size", "crop", "binarize", "train_size", "balanced",
    "batch_size", "eval_batch_size", "normalize", "on_device", "eval_train_set",
)  # fmt: skip
_CNN = ("channels", "kernel_size", "pool", "fc", "activation", "batchnorm", "init_std")
_CSV = ("save_dir", "name", "version", "prefix", "flush_logs_every_n_steps")

#: ``_target_`` → the keys it reads (None: any key, it passes ``**kwargs`` on). The
#: trainer group is checked against :data:`TRAINER_PARAMS` instead (reglab.trainer_config).
TARGET_KEYS: dict[str, tuple[str, ...] | None] = {
    "reglab.data.TensorDataModule": _DATA,
    "reglab.data.Corruption": (),
    "reglab.data.PartialLabels": ("q",),
    "reglab.data.GaussianPixels": (),
    "reglab.data.RandomPixels": (),
    "reglab.data.ShuffledPixels": (),
    "reglab.models.MLP": ("hidden", "activation", "batchnorm", "init_std"),
    "reglab.models.CNN": _CNN,
    "reglab.models.DropoutSpec": ("p_input", "p_hidden", "spatial", "mode", "mc_samples"),
    "reglab.regularizers.Regularizer": _PENALTY,
    "reglab.regularizers.L2": ("lam", *_PENALTY),
    "reglab.regularizers.L1": ("lam", *_PENALTY),
    "reglab.regularizers.L1Proximal": ("lam", *_PENALTY),
    "reglab.regularizers.MaxNorm": ("c", *_PENALTY),
    "reglab.regularizers.ElasticNet": ("lam_l1", "lam_l2", *_PENALTY),
    # reglab.optim's member versions read these (not every torch.optim argument)
    "torch.optim.SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    "torch.optim.Adam": _ADAM,
    "torch.optim.AdamW": _ADAM,
    # torch's arguments less last_epoch: reglab steps each member's schedule itself
    "torch.optim.lr_scheduler.StepLR": ("step_size", "gamma"),
    "torch.optim.lr_scheduler.ExponentialLR": ("gamma",),
    "torch.optim.lr_scheduler.CosineAnnealingLR": ("T_max", "eta_min"),
    "pytorch_lightning.loggers.CSVLogger": _CSV,
    "pytorch_lightning.loggers.TensorBoardLogger": None,  # **kwargs: SummaryWriter's
    "pytorch_lightning.loggers.WandbLogger": None,  # **kwargs: wandb.init's
    # the callbacks group: reglab's own, and Lightning's that need no import to check
    "reglab.callbacks.MemberRuns": (
        "every_minutes", "every_n_steps", "enabled", "keep", "stop_when_fit", "fit_threshold",
        "probe_size", "divergence_check_every",
    ),
    "pytorch_lightning.callbacks.LearningRateMonitor": (
        "logging_interval", "log_momentum", "log_weight_decay",
    ),
    "pytorch_lightning.callbacks.DeviceStatsMonitor": ("cpu_stats",),
    "pytorch_lightning.callbacks.TQDMProgressBar": ("refresh_rate", "process_position", "leave"),
}  # fmt: skip

#: The arguments of ``pytorch_lightning.Trainer.__init__`` (Lightning 2.x), so that the
#: trainer group is checked without importing Lightning; tests/test_refusal.py compares it
#: with the installed Trainer's signature. reglab.trainer_config says which it refuses.
TRAINER_PARAMS = (
    "accelerator", "strategy", "devices", "num_nodes", "precision", "logger", "callbacks",
    "fast_dev_run", "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time",
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
    "overfit_batches", "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps",
    "log_every_n_steps", "enable_checkpointing", "enable_progress_bar", "enable_model_summary",
    "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm", "deterministic",
    "benchmark", "inference_mode", "use_distributed_sampler", "profiler", "detect_anomaly",
    "barebones", "plugins", "sync_batchnorm", "reload_dataloaders_every_n_epochs",
    "default_root_dir", "enable_autolog_hparams", "model_registry",
)  # fmt: skip

#: Top-level keys reglab reads (conf/config.yaml and its groups) and ``meta``, the
#: namespace for notes of your own. Experiments may add their own (e.g. ``fixed_pn``).
TOP_KEYS = (
    "name", "seed", "threads", "compile", "momentum_ramp", "fit_threshold", "stop_when_fit",
    "probe_size", "checkpoint", "paths", "data", "corruption", "model", "dropout",
    "regularizer", "optimizer", "scheduler", "trainer", "callbacks", "logger", "scale", "launcher",
    "meta",
)  # fmt: skip

#: ``momentum_ramp`` (null by default): all three or none.
MOMENTUM_RAMP_KEYS = ("start", "end", "steps")
