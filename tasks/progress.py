"""Progress of a fine-tune's epoch that reads well everywhere: a live bar on a terminal; elsewhere (a log file, a
Prefect worker, CI) one log line per ~10 % of the epoch with the step, the loss, examples per second and the time
left, so logs hold no carriage-return bar updates."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable

log = logging.getLogger("tasks.training")
TICKS = 10  # progress lines per epoch away from a terminal


def on_terminal() -> bool:
    """Whether progress goes to a person watching a terminal (stderr is a TTY)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class EpochProgress:
    """Reports `total` batches of one epoch; `on_tick(share of the epoch done)` at each ~10 % (e.g. a Prefect
    progress artifact)."""

    def __init__(self, total: int, description: str, enabled: bool = True,
                 on_tick: Callable[[float], None] | None = None) -> None:
        self.total, self.description, self.enabled, self.on_tick = total, description, enabled, on_tick
        self.started = time.perf_counter()
        self.ticks = {math.ceil(total * k / TICKS) for k in range(1, TICKS + 1)}
        self.bar = None
        if enabled and on_terminal():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=description, unit="batch", leave=False)

    def update(self, step: int, examples: int, mean_loss: float) -> None:
        """Batch `step` (1-based) is done; `examples` seen so far this epoch, their mean loss."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{mean_loss:.4f}")
        if step not in self.ticks:
            return
        elapsed = time.perf_counter() - self.started
        if self.bar is None:
            left = elapsed / step * (self.total - step)
            log.info("%s: step %d/%d (%d%%), loss %.4f, %.1f examples/s, ETA %s", self.description, step,
                     self.total, round(100 * step / self.total), mean_loss, examples / max(elapsed, 1e-9),
                     _clock(left))
        if self.on_tick is not None:
            self.on_tick(step / self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"
