"""The training run behind ``facebench train --config FILE.toml``.

One process or ``torchrun --nproc-per-node N -m facebench train ...``. Step ``k`` (0-based):

1. the sampler's global batch of step ``k`` (this rank's part of it) is decoded, flipped, normalised;
2. ``lr = schedule(k)`` is set; the backbone runs (autocast in fp16/bf16 on CUDA when asked);
3. embeddings of all ranks are gathered; head + loss in float32 over the global batch;
4. backward; (fp16: unscale, and all ranks skip the step together if any gradient is not finite);
   gradients clipped by their global norm when ``clip_grad_norm > 0``; one SGD step.

Every ``[log] every`` steps a log row; every ``[validation] every`` steps (and at the end) validation;
every ``[checkpoint] every`` steps (and at the end, and on SIGINT/SIGTERM) a checkpoint. At the end:
``model.pt`` (backbone state_dict), ``model.onnx`` (parity-checked), a sidecar profile beside each and
``summary.json``. Running the same command again resumes from the latest checkpoint; with
``deterministic = true`` (CPU) the resumed run's weights equal those of an uninterrupted run bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import sha256_file, write_json
from facebench.extraction.preprocess import get_profile, write_sidecar
from facebench.train import checkpoint as ckpt
from facebench.train.config import TrainConfig, resume_differences
from facebench.train.criterion import MarginCriterion, build_criterion
from facebench.train.data import (
    DataSpec,
    StepSampler,
    describe_source,
    make_loader,
    open_source,
)
from facebench.train.distributed import (
    DistEnv,
    all_finite,
    any_rank,
    barrier,
    clip_grad_norm,
    gather_shards,
    init_distributed,
    shutdown,
    unwrap,
    wrap_backbone,
)
from facebench.train.heads import shard_range
from facebench.train.logs import TrainLogger
from facebench.train.schedule import LrSchedule, resolve_schedule

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What a call to :func:`train` did: ``status`` is ``finished`` or ``stopped`` (resumable)."""

    status: str
    step: int
    total_steps: int
    output: Path
    files: dict[str, str] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)


class _StopRequest:
    """SIGINT/SIGTERM set a flag checked between steps (the running step always completes)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading_is_main():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second signal: stop at once
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested (signal %d): finishing this step and saving a checkpoint", signum)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (``None`` = float32)."""
    if name == "fp32" or (name == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise FacebenchError(f"[run] precision = {name!r} needs a CUDA device; on CPU use fp32 (or auto)")
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if name == "bf16" else torch.float16


def _set_determinism(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def _build_backbone(cfg: TrainConfig, env: DistEnv) -> nn.Module:
    from facebench.models.registry import create_backbone

    kwargs: dict[str, Any] = {"num_features": cfg.model.embedding_dim}
    if cfg.model.dropout is not None:
        kwargs["dropout"] = cfg.model.dropout
    torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank
    model = create_backbone(cfg.model.backbone, **kwargs)
    if cfg.model.sync_batchnorm and env.distributed:
        if env.device.type != "cuda":
            raise FacebenchError("[model] sync_batchnorm needs CUDA (torch's SyncBatchNorm does not run on CPU)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(env.device)
    if cfg.model.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class _Trainer:
    def __init__(self, cfg: TrainConfig, env: DistEnv) -> None:
        self.cfg, self.env = cfg, env
        self.out = Path(cfg.run.output)
        self.ckpt_dir = self.out / "checkpoints"
        self.profile = get_profile(cfg.data.profile)
        self.amp_dtype = _precision(cfg.run.precision, env.device)
        d = cfg.data
        if d.batch_size % env.world_size:
            raise FacebenchError(f"[data] batch_size {d.batch_size} (the global batch) is not divisible by "
                                 f"{env.world_size} ranks")
        self.source, self.classes = open_source(DataSpec(d.source, d.path, d.root, d.identities, d.identity_key,
                                                         d.num_classes))
        self.sampler = StepSampler(len(self.source), d.batch_size, cfg.run.seed, env.rank, env.world_size, d.flip)
        self.schedule: LrSchedule = resolve_schedule(cfg.schedule, cfg.optim.lr, self.sampler.steps_per_epoch)
        self.benchmarks = []
        if cfg.validation.benchmarks:
            from facebench.train.validate import resolve_benchmarks

            self.benchmarks = resolve_benchmarks(cfg.validation.benchmarks, cfg.validation.data_root or ".")
        self.backbone = _build_backbone(cfg, env)
        h = cfg.head
        self.criterion: MarginCriterion = build_criterion(
            h.type, cfg.model.embedding_dim, self.classes,
            head_kwargs={"s": h.s, "m": h.m, "t": h.t, "mode": h.mode, "easy_margin": h.easy_margin,
                         "variant": h.variant},
            loss_name=cfg.loss.type, loss_kwargs={"gamma": cfg.loss.gamma, "keep": cfg.loss.keep},
            rank=env.rank, world_size=env.world_size, group=env.group, seed=cfg.run.seed,
        ).to(env.device)
        self.model = wrap_backbone(self.backbone, env)
        o = cfg.optim
        self.head_param = self.criterion.head.weight
        self.optimizer = torch.optim.SGD(
            [{"params": list(self.backbone.parameters())}, {"params": [self.head_param]}],
            lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.shard_sizes = [b - a for a, b in (shard_range(self.classes, r, env.world_size)
                                               for r in range(env.world_size))]
        # per-rank generator streams (dropout etc.) after the shared initialisation
        torch.manual_seed(cfg.run.seed * 1009 + 17 + env.rank)
        self.step = 0
        self.saved_step = -1

    # ---------------------------------------------------------------- checkpoints
    def _head_momentum(self) -> torch.Tensor | None:
        state = self.optimizer.state.get(self.head_param, {})
        return state.get("momentum_buffer")

    def save(self) -> Path | None:
        """Gather the shards and write the checkpoint of ``self.step`` (rank 0); return its path there."""
        env = self.env
        weight = gather_shards(self.head_param.detach(), self.shard_sizes, env.group)
        mom = self._head_momentum()
        momentum = gather_shards(mom.detach(), self.shard_sizes, env.group) if mom is not None else None
        rng = ckpt.capture_rng(env.device)
        rngs = _gather_objects(rng, env)
        path = None
        if env.is_main:
            opt_state = self.optimizer.state_dict()
            head_index = len(list(self.backbone.parameters()))
            opt_state["state"].pop(head_index, None)  # the head's momentum is stored gathered, below
            payload = {
                "step": self.step,
                "facebench_version": __version__,
                "config": self.cfg.to_dict(),
                "world_size": env.world_size,
                "classes": self.classes,
                "backbone": unwrap(self.model).state_dict(),
                "head": {"weight": weight, "momentum": momentum},
                "optimizer": opt_state,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "sampler": self.sampler.state(self.step),
                "rng": rngs,
            }
            path = ckpt.checkpoint_path(self.ckpt_dir, self.step)
            ckpt.save_checkpoint(path, payload)
            ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.checkpoint.keep)
            log.info("checkpoint %s", path)
        self.saved_step = self.step
        barrier(env)
        return path

    def load(self, path: Path) -> None:
        data = ckpt.load_checkpoint(path)
        diffs = resume_differences(data.get("config", {}), self.cfg)
        if diffs:
            raise FacebenchError(
                f"{path}: the config differs from the run being resumed: {'; '.join(diffs)}. Use another "
                "[run] output for a new run, or restore these settings")
        if data["classes"] != self.classes:
            raise FacebenchError(f"{path}: checkpoint has {data['classes']} classes, the data now {self.classes}")
        saved = data["sampler"]
        if (saved["images"], saved["global_batch"]) != (self.sampler.n, self.sampler.global_batch):
            raise FacebenchError(
                f"{path}: the checkpoint was trained on {saved['images']} images with global batch "
                f"{saved['global_batch']}; now {self.sampler.n} images, batch {self.sampler.global_batch}: "
                "the training data changed")
        unwrap(self.model).load_state_dict(data["backbone"])
        start, stop = self.criterion.head.class_range
        with torch.no_grad():
            self.head_param.copy_(data["head"]["weight"][start:stop])
        opt_state = data["optimizer"]
        self.optimizer.load_state_dict(opt_state)
        if data["head"]["momentum"] is not None:
            self.optimizer.state[self.head_param]["momentum_buffer"] = (
                data["head"]["momentum"][start:stop].to(self.env.device).clone())
        if self.scaler is not None and data.get("scaler"):
            self.scaler.load_state_dict(data["scaler"])
        rngs = data["rng"]
        if data["world_size"] == self.env.world_size:
            ckpt.restore_rng(rngs[self.env.rank], self.env.device)
        else:
            log.warning("%s: saved with %d ranks, resumed with %d: generator streams restart (not bit-exact)",
                        path, data["world_size"], self.env.world_size)
        self.step = self.saved_step = int(data["step"])

    # ---------------------------------------------------------------- steps
    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = make_loader(self.source, self.sampler, self.profile, self.step, self.schedule.total_steps,
                             self.cfg.data.workers, pin_memory=self.env.device.type == "cuda")
        return iter(loader)

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_step(self, images: torch.Tensor, labels: torch.Tensor,
                   want_accuracy: bool) -> tuple[torch.Tensor, int | None, float | None]:
        env, cfg = self.env, self.cfg
        images = images.to(env.device, non_blocking=True)
        if cfg.model.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(env.device, non_blocking=True)
        self._set_lr(self.schedule.lr_at(self.step))
        autocast = (torch.autocast(env.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            emb = self.model(images)
        out = self.criterion(emb, labels, accuracy=want_accuracy)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(out.loss).backward()
            if env.distributed and not all_finite([self.head_param.grad], env.group, env.device):
                self.head_param.grad.fill_(float("nan"))  # every rank must see the overflow and skip
            self.scaler.unscale_(self.optimizer)
        else:
            out.loss.backward()
        norm = None
        if cfg.optim.clip_grad_norm > 0:
            norm = clip_grad_norm(list(self.backbone.parameters()), [self.head_param], cfg.optim.clip_grad_norm,
                                  env.group, env.device)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skipped (on every rank) when a gradient overflowed
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        return out.loss.detach(), out.correct, norm

    def validate(self, logger: TrainLogger | None) -> dict[str, dict[str, float]]:
        from facebench.train.validate import validate

        results: dict[str, dict[str, float]] = {}
        if self.env.is_main:
            v = self.cfg.validation
            for spec in self.benchmarks:
                metrics = validate(unwrap(self.model), spec, v.data_root or ".", profile=self.profile,
                                   device=self.env.device, architecture=self.cfg.model.backbone,
                                   out_dir=self.out / "validation", batch_size=v.batch_size, workers=v.workers,
                                   kfold_rule=v.kfold_rule)
                results[spec.name] = metrics
                if logger is not None:
                    logger.validation(self.step, spec.name, metrics)
                log.info("step %d %s: %s", self.step, spec.name,
                         ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "/" not in k))
        barrier(self.env)
        return results

    # ---------------------------------------------------------------- export
    def export(self) -> dict[str, str]:
        """Write model.pt, model.onnx and their sidecars (rank 0); return name -> path."""
        files: dict[str, str] = {}
        if not self.env.is_main:
            return files
        from facebench.atomic import atomic_path
        from facebench.models.export import (
            DEFAULT_TOLERANCE,
            PARITY_BATCH,
            export_checked,
        )
        from facebench.models.torch_backend import TorchEncoder

        model = copy.deepcopy(unwrap(self.model)).cpu().eval()
        if isinstance(model, nn.Module):
            model = _plain_batchnorm(model)
        profile = self.profile
        pt = self.out / "model.pt"
        with atomic_path(pt) as tmp:
            torch.save(model.state_dict(), tmp)
        write_sidecar(pt, profile)
        files["model.pt"] = str(pt)
        if self.cfg.export.onnx:
            encoder = TorchEncoder(model, format="pytorch", path=None, device="cpu", input_size=(112, 112),
                                   architecture=self.cfg.model.backbone, default_profile=profile)
            onnx_path = self.out / "model.onnx"
            # parity: max abs difference <= 1e-4 of the largest output on the check's seeded random inputs
            probe = np.random.default_rng(0).standard_normal((PARITY_BATCH, 3, 112, 112)).astype(np.float32)
            scale = float(np.max(np.abs(encoder.embed(probe))))
            result = export_checked(encoder, onnx_path, "onnx", opset=self.cfg.export.opset,
                                    tolerance=DEFAULT_TOLERANCE * max(1.0, scale))
            write_sidecar(onnx_path, profile)
            files["model.onnx"] = str(onnx_path)
            log.info("exported %s (max abs difference to torch %.2g)", onnx_path, result.max_abs_diff)
        return files

    # ---------------------------------------------------------------- the run
    def run(self, stop_at: int | None, resume_from: Path | None) -> TrainOutcome:
        env, cfg = self.env, self.cfg
        total = self.schedule.total_steps
        existing = ckpt.list_checkpoints(self.ckpt_dir)
        source = resume_from or (existing[-1][1] if existing else None)
        if source is not None:
            self.load(source)
            log.info("resumed from %s at step %d of %d", source, self.step, total)
        elif (self.out / "summary.json").exists():
            raise FacebenchError(f"{self.out}: holds a finished run without checkpoints; choose another [run] output")
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            log.info("training %s + %s (%s) on %d images of %d classes: %d steps of global batch %d (%d per epoch), "
                     "%d rank(s) on %s", cfg.model.backbone, cfg.head.type, cfg.loss.type, len(self.source),
                     self.classes, total, self.sampler.global_batch, self.sampler.steps_per_epoch, env.world_size,
                     env.device)
        logger = TrainLogger(self.out, self.step, cfg.log.tensorboard) if env.is_main else None
        barrier(env)
        stop_at = total if stop_at is None else min(stop_at, total)
        last: dict[str, Any] = {}
        window_loss = torch.zeros((), device=env.device)
        window_steps = window_images = 0
        t_start = t_window = time.perf_counter()
        status = "finished"
        validation: dict[str, Any] = {}
        files: dict[str, str] = {}
        self.model.train()
        with _StopRequest() as stop:
            batches = self._batches() if self.step < stop_at else iter(())
            while self.step < stop_at:
                images, labels = next(batches)
                log_now = (self.step + 1) % cfg.log.every == 0 or self.step + 1 == stop_at
                loss, correct, norm = self.train_step(images, labels, want_accuracy=log_now)
                window_loss += loss
                window_steps += 1
                window_images += self.sampler.global_batch
                if log_now:
                    now = time.perf_counter()
                    last = {
                        "step": self.step,
                        "epoch": self.step / self.sampler.steps_per_epoch,
                        "lr": self.schedule.lr_at(self.step - 1),
                        "loss": float(window_loss) / window_steps,
                        "accuracy": correct / self.sampler.global_batch if correct is not None else None,
                        "grad_norm": norm,
                        "images_per_s": window_images / max(now - t_window, 1e-9),
                        "elapsed_s": now - t_start,
                    }
                    if logger is not None:
                        logger.train(last)
                        log.info("step %d/%d lr %.4g loss %.4f acc %.3f %.1f img/s", self.step, total, last["lr"],
                                 last["loss"], last["accuracy"] or 0.0, last["images_per_s"])
                    window_loss.zero_()
                    window_steps = window_images = 0
                    t_window = now
                if cfg.validation.every and self.benchmarks and self.step % cfg.validation.every == 0 \
                        and self.step < total:
                    self.validate(logger)
                if self.step % cfg.checkpoint.every == 0 and self.step < stop_at:
                    self.save()
                if any_rank(stop.requested, env):  # CPU-side (gloo) agreement: no GPU synchronisation
                    break
            del batches  # stop the loader's workers
            if self.step < total:
                status = "stopped"
            if self.saved_step != self.step:
                path = self.save()
                if path is not None:
                    files["checkpoint"] = str(path)
            if status == "finished":
                if self.benchmarks:
                    validation = self.validate(logger)
                files.update(self.export())
        if logger is not None:
            logger.close()
        if status == "finished" and env.is_main:
            self._summary(files, last, validation, time.perf_counter() - t_start)
        barrier(env)
        return TrainOutcome(status=status, step=self.step, total_steps=total, output=self.out, files=files, last=last)

    def _summary(self, files: dict[str, str], last: dict[str, Any], validation: dict[str, Any], seconds: float) -> None:
        doc = {
            "facebench_version": __version__,
            "config": self.cfg.to_dict(),
            "data": describe_source(self.source, self.classes),
            "steps": self.schedule.total_steps,
            "steps_per_epoch": self.sampler.steps_per_epoch,
            "global_batch": self.sampler.global_batch,
            "world_size": self.env.world_size,
            "device": str(self.env.device),
            "precision": str(self.amp_dtype or "float32"),
            "head": self.criterion.head.spec.to_dict(),
            "last_log": last,
            "validation": validation,
            "files": {name: {"path": path, "sha256": sha256_file(path)} for name, path in files.items()
                      if name != "checkpoint"},
            "profile": self.profile.to_dict(),
            "seconds_this_call": seconds,
        }
        write_json(self.out / "summary.json", doc)


def _plain_batchnorm(model: nn.Module) -> nn.Module:
    """SyncBatchNorm layers back to BatchNorm2d for export."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            setattr(model, name, bn)
        else:
            _plain_batchnorm(child)
    return model


def _gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """``obj`` of every rank (rank order) on every rank."""
    if not env.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj, group=env.group)
    return out


def train(cfg: TrainConfig, *, stop_at: int | None = None, resume_from: str | Path | None = None) -> TrainOutcome:
    """Run (or resume) the training described by ``cfg``; ``stop_at`` ends this call after that many steps
    in all (checkpoint saved, resumable); ``resume_from`` picks a checkpoint instead of the latest one."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    _set_determinism(cfg.run.deterministic)
    env = init_distributed(cfg.run.device)
    try:
        trainer = _Trainer(cfg, env)
        return trainer.run(stop_at, Path(resume_from) if resume_from else None)
    finally:
        shutdown(env)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.benchmark = benchmark


def plan(cfg: TrainConfig) -> dict[str, Any]:
    """What a run of ``cfg`` would do (for ``--dry-run``): data counts and the schedule in steps."""
    d = cfg.data
    source, classes = open_source(DataSpec(d.source, d.path, d.root, d.identities, d.identity_key, d.num_classes))
    sampler = StepSampler(len(source), d.batch_size, cfg.run.seed, flip=d.flip)
    schedule = resolve_schedule(cfg.schedule, cfg.optim.lr, sampler.steps_per_epoch)
    if cfg.validation.benchmarks:
        from facebench.train.validate import resolve_benchmarks

        resolve_benchmarks(cfg.validation.benchmarks, cfg.validation.data_root or ".")
    existing = ckpt.list_checkpoints(Path(cfg.run.output) / "checkpoints")
    return {
        "images": len(source),
        "classes": classes,
        "global_batch": d.batch_size,
        "steps_per_epoch": sampler.steps_per_epoch,
        "total_steps": schedule.total_steps,
        "warmup_steps": schedule.warmup_steps,
        "milestones": list(schedule.milestones),
        "lr_first_last": f"{schedule.lr_at(0):.6g} .. {schedule.lr_at(schedule.total_steps - 1):.6g}",
        "head": cfg.head.type,
        "backbone": cfg.model.backbone,
        "resume_from": str(existing[-1][1]) if existing else "(new run)",
    }
