"""What each part of the config may hold, known without importing torch or Lightning.

Validation runs before the heavy imports, so that a refused input takes well under a
second; the keys that reglab's own ``_target_``\\ s (and the torch classes it builds) read
are therefore listed here, and tests/e2e/test_refusal.py checks every list against the real
signatures. A ``_target_`` not listed (a class of your own) is imported and its
signature read instead.
"""

from __future__ import annotations

#: reglab.models.blocks.ACTIVATIONS, by name (the data sets: reglab.datasets).
ACTIVATION_NAMES = ("relu", "sigmoid", "tanh")

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
#: trainer group is checked without importing Lightning; tests/e2e/test_refusal.py compares it
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
    "name", "seed", "threads", "compile", "vmap_solo", "momentum_ramp", "fit_threshold",
    "stop_when_fit", "probe_size", "checkpoint", "paths", "data", "corruption", "model", "dropout",
    "regularizer", "optimizer", "scheduler", "trainer", "callbacks", "logger", "scale", "launcher",
    "meta",
)  # fmt: skip

#: ``momentum_ramp`` (null by default): all three or none.
MOMENTUM_RAMP_KEYS = ("start", "end", "steps")
