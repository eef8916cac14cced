"""Which checkpoints to keep: the last N, the best K by a monitored metric, and the protected.

Ordering is by the step recorded in each manifest, never by name or modification time. The
newest checkpoint, the single best one and any protected path (e.g. the resume source) are
never selected for deletion, whatever N and K say.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from trainer_core.errors import UsageError
from trainer_core.layouts import CheckpointInfo

_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?(?:e[+-]?\d+)?)\s*\*\s*)?([A-Za-z_][\w./-]*)\s*")


def parse_metric(expression: str) -> dict[str, float]:
    """Parse ``"val_loss"`` or a linear combination ``"recon + 0.1*ortho - 2*acc"`` into weights."""
    weights: dict[str, float] = {}
    pos = 0
    text = expression.strip()
    if not text:
        raise UsageError("empty metric: give a metric name such as val_loss, or a sum like 'recon + 0.1*ortho'")
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos or (pos and not m.group(1)):
            raise UsageError(
                f"cannot parse metric expression {expression!r}: use names joined by + or -, with optional weights like 0.5*name"
            )
        sign = -1.0 if m.group(1) == "-" else 1.0
        weights[m.group(3)] = weights.get(m.group(3), 0.0) + sign * float(m.group(2) or 1.0)
        pos = m.end()
    return weights


@dataclass
class RetentionPolicy:
    """Keep the last ``keep_last`` and the best ``keep_best`` (by ``metric``, ``mode``).

    With ``pattern`` (a glob such as ``autosave_*.pth``) only checkpoints whose file name matches
    are considered; the others (a user's named saves) are never deleted.

    ``None`` for ``keep_last`` keeps every checkpoint. ``metric`` may be a name or a linear
    combination (see :func:`parse_metric`); checkpoints missing a metric never count as best.
    """

    keep_last: int | None = None
    keep_best: int = 0
    metric: str | None = None
    mode: str = "min"
    protected: set[str] = field(default_factory=set)
    pattern: str | None = None  # only checkpoints whose file name matches this glob are considered

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise UsageError(f"mode must be 'min' or 'max', not {self.mode!r}")
        if self.keep_best and not self.metric:
            raise UsageError("keep_best needs a metric to rank by: pass --metric NAME")
        if self.keep_last is not None and self.keep_last < 0 or self.keep_best < 0:
            raise UsageError("keep-last and keep-best must be 0 or more")
        self._weights = parse_metric(self.metric) if self.metric else {}

    def score(self, info: CheckpointInfo) -> float | None:
        if not self._weights:
            return None
        total = 0.0
        for name, weight in self._weights.items():
            value = info.metrics.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
                return None
            total += weight * value
        return total

    def ranked_best(self, checkpoints: Iterable[CheckpointInfo]) -> list[CheckpointInfo]:
        scored = [(s, c) for c in checkpoints if (s := self.score(c)) is not None]
        scored.sort(key=lambda sc: (sc[0] if self.mode == "min" else -sc[0], -(sc[1].step or 0)))
        return [c for _, c in scored]

    def select_for_deletion(self, checkpoints: Iterable[CheckpointInfo]) -> list[CheckpointInfo]:
        """Committed (status ok) checkpoints to delete; everything else is left alone."""
        ok = [
            c
            for c in checkpoints
            if c.status == "ok" and c.step is not None and (self.pattern is None or fnmatch.fnmatchcase(os.path.basename(c.path), self.pattern))
        ]
        if not ok:
            return []
        ok.sort(key=lambda c: (c.step, c.created or ""))
        keep: set[str] = {ok[-1].path}  # the newest, always
        if self.keep_last is None:
            keep.update(c.path for c in ok)
        elif self.keep_last:
            keep.update(c.path for c in ok[-self.keep_last :])
        best = self.ranked_best(ok)
        if best:
            keep.add(best[0].path)  # the best, always
            keep.update(c.path for c in best[: self.keep_best])
        keep.update(self.protected)
        return [c for c in ok if c.path not in keep]


def plan_deletion(
    policy: RetentionPolicy, checkpoints: Iterable[CheckpointInfo], is_sound: Callable[[CheckpointInfo], bool]
) -> tuple[list[CheckpointInfo], list[CheckpointInfo]]:
    """(to delete, found corrupt): the policy's choice once every checkpoint it would keep passed
    ``is_sound`` (a full hash check). A checkpoint that fails never counts as kept, so the policy
    keeps the next one instead; it is not deleted either (``core verify`` and a person decide)."""
    candidates = [c for c in checkpoints if c.status == "ok"]
    unsound: list[CheckpointInfo] = []
    while True:
        doomed = policy.select_for_deletion(candidates)
        dropped = {c.path for c in doomed}
        bad = [c for c in candidates if c.path not in dropped and not is_sound(c)]
        if not bad:
            return doomed, unsound
        unsound += bad
        bad_paths = {c.path for c in bad}
        candidates = [c for c in candidates if c.path not in bad_paths]
