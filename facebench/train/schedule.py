"""Learning rate by step: linear warm-up, then step / poly / cosine decay (or constant).

With base rate ``lr``, total steps ``T``, warm-up steps ``W``:

- warm-up factor ``f(k) = a + (1 - a) (k + 1) / W`` for ``k < W`` (``a`` = ``warmup_start``), else 1;
- ``step``: ``lr * gamma ** (number of milestones <= k)``;
- ``poly``: ``min_lr + (lr - min_lr) (1 - p) ** power`` with ``p = (k - W) / (T - W)`` (0 during warm-up);
- ``cosine``: ``min_lr + (lr - min_lr) (1 + cos(pi p)) / 2``;
- ``constant``: ``lr``;

and the rate of step ``k`` is ``f(k)`` times the decayed rate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from facebench.train.config import ScheduleSection


@dataclass(frozen=True)
class LrSchedule:
    """A schedule resolved to steps."""

    lr: float
    total_steps: int
    kind: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    power: float = 2.0
    min_lr: float = 0.0
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def lr_at(self, step: int) -> float:
        """The learning rate used by step ``step`` (0-based)."""
        warm = 1.0
        if step < self.warmup_steps:
            warm = self.warmup_start + (1.0 - self.warmup_start) * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        p = min(1.0, max(0.0, (step - self.warmup_steps) / span))
        if self.kind == "step":
            rate = self.lr * self.gamma ** bisect.bisect_right(self.milestones, step)
        elif self.kind == "poly":
            rate = self.min_lr + (self.lr - self.min_lr) * (1.0 - p) ** self.power
        elif self.kind == "cosine":
            rate = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            rate = self.lr
        return warm * rate


def resolve_schedule(section: ScheduleSection, lr: float, steps_per_epoch: int) -> LrSchedule:
    """Convert a ``[schedule]`` section (epochs or steps) into steps; an epoch is ``steps_per_epoch`` steps."""
    unit = steps_per_epoch if section.epochs is not None else 1
    length = section.epochs if section.epochs is not None else section.steps
    total = max(1, round(float(length) * unit))  # type: ignore[arg-type]
    return LrSchedule(
        lr=lr,
        total_steps=total,
        kind=section.kind,
        milestones=tuple(round(m * unit) for m in section.milestones),
        gamma=section.gamma,
        power=section.power,
        min_lr=section.min_lr,
        warmup_steps=round(section.warmup * unit),
        warmup_start=section.warmup_start,
    )
