"""Data-parallel fine-tuning under torch.distributed, launched as torchrun launches (torch's elastic agent).

`train.processes: N` starts N processes on this machine (gloo on the CPU, each with an equal share of the cores;
NCCL on CUDA GPUs, one process per GPU). Every process builds the same model from the same seed and walks the same
length-grouped batches; each batch is split between them by rank (`batch[rank::N]`), each process's loss is its
share's weighted sum over the whole batch's size, and the gradients are summed across processes before clipping and
the optimizer step, so every step uses the whole batch's gradient, as one process would. Rank 0 alone validates,
writes checkpoints and saves the model; its early-stopping decision is broadcast to the others.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tasks.errors import TrainingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """This process's place among the data-parallel processes of one fine-tune (rank 0 of 1: no distribution)."""

    rank: int = 0
    world: int = 1

    @property
    def writes(self) -> bool:
        """Whether this process validates, checkpoints and saves the model."""
        return self.rank == 0

    def shard(self, batch: np.ndarray) -> np.ndarray:
        """This process's rows of a batch (all of them when alone)."""
        return batch if self.world == 1 else batch[self.rank::self.world]

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` (a scalar) over all processes."""
        if self.world == 1:
            return value
        summed = value.detach().clone()
        torch.distributed.all_reduce(summed)
        return summed

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its sum over all processes, in one flat all-reduce."""
        if self.world == 1:
            return
        parameters = [parameter for parameter in parameters if parameter.requires_grad]
        for parameter in parameters:
            if parameter.grad is None:  # a process whose share of every batch so far was empty
                parameter.grad = torch.zeros_like(parameter)
        flat = torch.cat([parameter.grad.reshape(-1) for parameter in parameters])
        torch.distributed.all_reduce(flat)
        offset = 0
        for parameter in parameters:
            parameter.grad.copy_(flat[offset:offset + parameter.numel()].view_as(parameter.grad))
            offset += parameter.numel()

    def same_start(self, module: torch.nn.Module) -> None:
        """Give every process rank 0's weights (they already agree when built from one seed; this makes it so)."""
        if self.world == 1:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            torch.distributed.broadcast(tensor.data, src=0)

    def agree(self, flag: bool) -> bool:
        """Rank 0's `flag`, on every process."""
        if self.world == 1:
            return flag
        value = torch.tensor([int(flag)])
        torch.distributed.broadcast(value, src=0)
        return bool(value.item())


def device_for(device: torch.device, group: Group) -> torch.device:
    """One GPU per process on CUDA; the CPU stays the CPU."""
    return torch.device("cuda", group.rank) if device.type == "cuda" and group.world > 1 else device


def launch(entry: Callable[..., Any], args: tuple, kwargs: dict[str, Any], processes: int, device: torch.device,
           progress: bool) -> Any:
    """Run `entry(*args, **kwargs, group=...)` in `processes` processes through torch's elastic agent (what
    `torchrun --nproc-per-node N` starts); rank 0's return value. A TrainingError in a process is raised here."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise TrainingError(f"train.processes is {processes} but torch sees {torch.cuda.device_count()} CUDA "
                            "GPU(s); use one process per GPU at most")
    threads = max(1, torch.get_num_threads() // processes) if device.type == "cpu" else 1
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"adaptflow-{uuid.uuid4().hex}",
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{_free_port()}", max_restarts=0,
                          start_method="spawn", monitor_interval=0.5)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # off the main thread (a Prefect or Dask task) the agent cannot install its signal handlers and says so; each
    # process instead ends with this one (_end_with_parent)
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.ERROR)
    log.info("fine-tuning in %d processes (torch.distributed, %s, %d thread(s) each)", processes, backend, threads)
    outcome = elastic_launch(config, _rank_main)(entry, args, kwargs, backend, threads, progress)[0]
    if isinstance(outcome, TrainingError):
        raise outcome
    return outcome


def _rank_main(entry: Callable[..., Any], args: tuple, kwargs: dict[str, Any], backend: str, threads: int,
               progress: bool) -> Any:
    """One process of the run: join the group, train, leave; a TrainingError comes back as a value."""
    _end_with_parent()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(threads)
    if progress and rank == 0:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.distributed.init_process_group(backend)
    try:
        return entry(*args, **kwargs, progress=progress and rank == 0, group=Group(rank, world))
    except TrainingError as error:
        return error
    finally:
        torch.distributed.destroy_process_group()


def _end_with_parent() -> None:
    """Have Linux end this process when the one that launched it dies (no orphan holding cores)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
