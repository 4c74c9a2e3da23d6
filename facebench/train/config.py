"""The training config (``facebench train --config FILE.toml``): schema, defaults, validation.

Every section and key is listed below (docs/training.md explains them); an unknown section or key, a
wrong type or an out-of-range value is a :class:`FacebenchError` naming the file, the ``[section] key``
and what is allowed (with a "did you mean"). Relative paths are taken from the current directory.
Lengths are in epochs when ``[schedule] epochs`` is given, in steps when ``[schedule] steps`` is: the
warm-up and the milestones use the same unit (fractional epochs allowed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError
from facebench.registry import Registry
from facebench.schema import choice, from_table, positive
from facebench.extraction.preprocess import PROFILES
from facebench.models.registry import BACKBONES
from facebench.train.data import IDENTITY_KEYS, SOURCES
from facebench.train.distributed import DEVICES
from facebench.train.heads import HEADS, MODES, VARIANTS
from facebench.train.losses import LOSSES
from facebench.io.textdoc import TOMLDecodeError, parse_toml

SCHEDULES: Registry[str] = Registry("schedule kind", [
    ("step", "lr * gamma ** (milestones passed)"),
    ("poly", "min_lr + (lr - min_lr) (1 - p) ** power"),
    ("cosine", "min_lr + (lr - min_lr) (1 + cos(pi p)) / 2"),
    ("constant", "lr"),
])
"""``[schedule] kind`` -> its decay rule (``facebench.train.schedule``)."""
PRECISIONS: Registry[str] = Registry("precision", [
    ("auto", "bf16 where the GPU supports it, else fp16"),
    ("fp32", "no autocast"),
    ("fp16", "float16 autocast with a gradient scaler"),
    ("bf16", "bfloat16 autocast"),
])
"""``[run] precision`` -> the autocast dtype on CUDA (CPU always runs float32)."""


@dataclass(frozen=True)
class RunSection:
    """``[run]``: where outputs go and how the process runs."""

    output: str
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    deterministic: bool = False
    threads: int = 0


@dataclass(frozen=True)
class DataSection:
    """``[data]``: training images, labels, input profile, batch."""

    source: str
    path: str
    root: str | None = None
    identities: str | None = None
    identity_key: str = "dir"
    num_classes: int | None = None
    profile: str = "insightface"
    flip: bool = True
    batch_size: int = 128
    workers: int = 4


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the backbone from the registry of ``facebench.models``."""

    backbone: str
    embedding_dim: int = 512
    dropout: float | None = None
    sync_batchnorm: bool = False
    channels_last: bool = False


@dataclass(frozen=True)
class HeadSection:
    """``[head]``: the MV-Softmax family head (``facebench.train.heads``)."""

    type: str = "mv-am"
    s: float | None = None
    m: float | None = None
    t: float | None = None
    mode: str = "adaptive"
    easy_margin: bool = True
    variant: str = "reference"


@dataclass(frozen=True)
class LossSection:
    """``[loss]``: cross-entropy, focal (``gamma``) or hard-mining (``keep``)."""

    type: str = "cross-entropy"
    gamma: float = 2.0
    keep: float = 0.9


@dataclass(frozen=True)
class OptimSection:
    """``[optim]``: SGD."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    clip_grad_norm: float = 0.0


@dataclass(frozen=True)
class ScheduleSection:
    """``[schedule]``: length, learning-rate decay and warm-up."""

    epochs: float | None = None
    steps: int | None = None
    kind: str = "step"
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    power: float = 2.0
    min_lr: float = 0.0
    warmup: float = 0.0
    warmup_start: float = 0.0


@dataclass(frozen=True)
class CheckpointSection:
    """``[checkpoint]``: how often to save (steps) and how many to keep."""

    every: int = 1000
    keep: int = 2


@dataclass(frozen=True)
class ValidationSection:
    """``[validation]``: benchmarks evaluated with the evaluator of ``facebench run``."""

    benchmarks: list[str] = field(default_factory=list)
    data_root: str | None = None
    every: int = 0
    batch_size: int = 128
    workers: int = 2
    kfold_rule: str = "insightface"


@dataclass(frozen=True)
class LogSection:
    """``[log]``: scalar logging (CSV files, and TensorBoard event files unless ``tensorboard = false``)."""

    every: int = 50
    tensorboard: bool = True


@dataclass(frozen=True)
class ExportSection:
    """``[export]``: the final model."""

    onnx: bool = True
    opset: int = 17


@dataclass(frozen=True)
class TrainConfig:
    """A validated training config (one attribute per section)."""

    run: RunSection
    data: DataSection
    model: ModelSection
    head: HeadSection = HeadSection()
    loss: LossSection = LossSection()
    optim: OptimSection = OptimSection()
    schedule: ScheduleSection = ScheduleSection()
    checkpoint: CheckpointSection = CheckpointSection()
    validation: ValidationSection = ValidationSection()
    log: LogSection = LogSection()
    export: ExportSection = ExportSection()
    source: str = "<config>"

    def to_dict(self) -> dict[str, Any]:
        """Plain sections and keys (``None`` values left out), recorded in checkpoints."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            section = dataclasses.asdict(getattr(self, f.name))
            out[f.name] = {k: v for k, v in section.items() if v is not None}
        return out


SECTIONS: Registry[type] = Registry("section", [
    ("run", RunSection), ("data", DataSection), ("model", ModelSection), ("head", HeadSection),
    ("loss", LossSection), ("optim", OptimSection), ("schedule", ScheduleSection),
    ("checkpoint", CheckpointSection), ("validation", ValidationSection), ("log", LogSection),
    ("export", ExportSection),
])
"""Section name -> its dataclass, in the order of :class:`TrainConfig`."""
REQUIRED_SECTIONS = ("run", "data", "model")
RESUME_SECTIONS = ("data", "model", "head", "loss", "optim", "schedule")
"""Sections that must match between a checkpoint and the config that resumes it (``run.seed`` too)."""
RESUME_IGNORED = {("data", "workers")}


def _validate(cfg: TrainConfig) -> None:
    o = cfg.source
    DEVICES.check(cfg.run.device, f"{o}: [run] device")
    PRECISIONS.check(cfg.run.precision, f"{o}: [run] precision")
    positive(cfg.run.threads, f"{o}: [run] threads", zero_ok=True)
    d = cfg.data
    SOURCES.check(d.source, f"{o}: [data] source")
    IDENTITY_KEYS.check(d.identity_key, f"{o}: [data] identity_key")
    if d.identity_key != "dir" and d.source != "list":
        raise FacebenchError(f"{o}: [data] identity_key applies to source = \"list\" only")
    if d.root is not None and d.source != "list":
        raise FacebenchError(f"{o}: [data] root applies to source = \"list\" only (paths of the list file)")
    PROFILES.check(d.profile, f"{o}: [data] profile")
    if PROFILES[d.profile].size != 112 or PROFILES[d.profile].chip != "arcface":
        raise FacebenchError(f"{o}: [data] profile {d.profile!r} is not a 112x112 ArcFace-chip profile")
    positive(d.batch_size, f"{o}: [data] batch_size")
    positive(d.workers, f"{o}: [data] workers", zero_ok=True)
    positive(d.num_classes, f"{o}: [data] num_classes")
    BACKBONES.check(cfg.model.backbone, f"{o}: [model] backbone")
    positive(cfg.model.embedding_dim, f"{o}: [model] embedding_dim")
    if cfg.model.dropout is not None and not 0 <= cfg.model.dropout < 1:
        raise FacebenchError(f"{o}: [model] dropout must lie in [0, 1), got {cfg.model.dropout}")
    h = cfg.head
    HEADS.check(h.type, f"{o}: [head] type")
    MODES.check(h.mode, f"{o}: [head] mode")
    VARIANTS.check(h.variant, f"{o}: [head] variant")
    LOSSES.check(cfg.loss.type, f"{o}: [loss] type")
    positive(cfg.optim.lr, f"{o}: [optim] lr")
    positive(cfg.optim.weight_decay, f"{o}: [optim] weight_decay", zero_ok=True)
    positive(cfg.optim.clip_grad_norm, f"{o}: [optim] clip_grad_norm", zero_ok=True)
    if not 0 <= cfg.optim.momentum < 1:
        raise FacebenchError(f"{o}: [optim] momentum must lie in [0, 1), got {cfg.optim.momentum}")
    if cfg.optim.nesterov and cfg.optim.momentum == 0:
        raise FacebenchError(f"{o}: [optim] nesterov needs momentum > 0")
    s = cfg.schedule
    if (s.epochs is None) == (s.steps is None):
        raise FacebenchError(f"{o}: [schedule] give exactly one of epochs and steps")
    positive(s.epochs, f"{o}: [schedule] epochs")
    positive(s.steps, f"{o}: [schedule] steps")
    SCHEDULES.check(s.kind, f"{o}: [schedule] kind")
    total = s.epochs if s.epochs is not None else s.steps
    if s.milestones and s.kind != "step":
        raise FacebenchError(f"{o}: [schedule] milestones apply to kind = \"step\" only")
    if s.milestones != sorted(s.milestones) or any(not 0 < m < total for m in s.milestones):  # type: ignore[operator]
        raise FacebenchError(f"{o}: [schedule] milestones must increase and lie inside (0, {total}), got {s.milestones}")
    if not 0 <= s.warmup < total:  # type: ignore[operator]
        raise FacebenchError(f"{o}: [schedule] warmup must lie in [0, {total}), got {s.warmup}")
    if not 0 <= s.warmup_start <= 1:
        raise FacebenchError(f"{o}: [schedule] warmup_start (a fraction of lr) must lie in [0, 1], got {s.warmup_start}")
    if not 0 < s.gamma <= 1:
        raise FacebenchError(f"{o}: [schedule] gamma must lie in (0, 1], got {s.gamma}")
    positive(s.power, f"{o}: [schedule] power")
    if not 0 <= s.min_lr <= cfg.optim.lr:
        raise FacebenchError(f"{o}: [schedule] min_lr must lie in [0, lr], got {s.min_lr}")
    positive(cfg.checkpoint.every, f"{o}: [checkpoint] every")
    positive(cfg.checkpoint.keep, f"{o}: [checkpoint] keep")
    v = cfg.validation
    positive(v.every, f"{o}: [validation] every", zero_ok=True)
    if v.benchmarks and not v.data_root:
        raise FacebenchError(f"{o}: [validation] benchmarks need data_root (the folder `facebench run` reads)")
    choice(v.kfold_rule, ("insightface", "facexzoo"), f"{o}: [validation] kfold_rule")
    positive(cfg.log.every, f"{o}: [log] every")
    if not 7 <= cfg.export.opset <= 21:
        raise FacebenchError(f"{o}: [export] opset must lie in 7..21, got {cfg.export.opset}")
    # the head's own rules (margin on softmax, t without MV, ranges)
    from facebench.train.heads import make_spec

    try:
        make_spec(h.type, s=h.s, m=h.m, t=h.t, mode=h.mode, easy_margin=h.easy_margin, variant=h.variant)
    except FacebenchError as exc:
        raise FacebenchError(f"{o}: [head] {exc}") from None
    from facebench.train.losses import make_loss

    try:
        make_loss(cfg.loss.type, gamma=cfg.loss.gamma, keep=cfg.loss.keep)
    except FacebenchError as exc:
        raise FacebenchError(f"{o}: [loss] {exc}") from None


def config_from_dict(data: dict[str, Any], origin: str = "<config>") -> TrainConfig:
    """Validate a parsed TOML document into a :class:`TrainConfig`."""
    for name in data:
        SECTIONS.check(name, origin)
    for name in REQUIRED_SECTIONS:
        if name not in data:
            raise FacebenchError(f"{origin}: missing section [{name}]")
    sections = {name: from_table(cls, data[name], f"{origin}: [{name}]") for name, cls in SECTIONS.items() if name in data}
    cfg = TrainConfig(**sections, source=origin)
    _validate(cfg)
    return cfg


def _parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, value); the value is read as TOML, else taken as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise FacebenchError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. --set optim.lr=0.05")
    name, raw = text.split("=", 1)
    section, key = name.strip().split(".", 1)
    try:
        value = parse_toml(f"v = {raw}", f"--set {text!r}")["v"]
    except TOMLDecodeError:
        value = raw
    return section, key, value


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read, override (``SECTION.KEY=VALUE`` items) and validate a training config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FacebenchError(f"{path}: config file not found") from None
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read the config: {exc}") from None
    try:
        data = parse_toml(text, str(path))
    except TOMLDecodeError as exc:
        raise FacebenchError(f"{path}: invalid TOML: {exc}") from None
    for item in overrides or []:
        section, key, value = _parse_override(item)
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise FacebenchError(f"--set {item!r}: [{section}] is not a table")
        data[section][key] = value
    return config_from_dict(data, str(path))


def resume_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``section.key: saved -> now`` for every setting that must not change when resuming."""
    now = cfg.to_dict()
    diffs = []
    for section in RESUME_SECTIONS:
        a, b = saved.get(section, {}), now.get(section, {})
        for key in sorted(set(a) | set(b)):
            if (section, key) in RESUME_IGNORED:
                continue
            if a.get(key) != b.get(key):
                diffs.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    if saved.get("run", {}).get("seed") != now["run"]["seed"]:
        diffs.append(f"run.seed: {saved.get('run', {}).get('seed')!r} -> {now['run']['seed']!r}")
    return diffs
