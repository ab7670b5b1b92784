"""Data-parallel training under ``torchrun``: PyTorch's DistributedDataParallel, our training loop unchanged.

``torchrun --nproc-per-node 2 -m rnnlab charlm train ...`` (or across machines with ``--nnodes``,
``--node-rank`` and ``--rdzv-endpoint``) starts one process per rank with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` set; the loop then joins the process group (gloo on CPU, NCCL on CUDA) and:

- ``--batch`` stays the *global* batch: every rank draws the same global batch from the run's seeded data
  generator and trains on its own rows of it (``shard``), so 1 or N processes train the same model (to float
  tolerance, without dropout: its masks are each rank's own);
- DDP all-reduces the gradients; each rank's loss is weighted by its share of the rows, so that uneven
  shares still average to the global batch's mean;
- only rank 0 prints, and writes checkpoints, metrics, plots and logs; every rank evaluates (the same
  weights, the same data: the same early-stopping decisions), and a time budget is rank 0's clock;
- a collective that waits longer than ``RNNLAB_DIST_TIMEOUT`` seconds (default 300) fails, and torchrun
  ends the whole job when one rank dies, so a killed rank never leaves the others hanging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place in a torchrun job (rank 0 of 1 when not launched by torchrun)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def is_main() -> bool:
    return world().main


def start(device: torch.device) -> World:
    """Join the job's process group (once); returns this process's World."""
    here = world()
    if here.active and not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get("RNNLAB_DIST_TIMEOUT", 300)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return here


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: tuple, here: World) -> tuple[tuple, float]:
    """This rank's rows of a global batch (every tensor's first dimension; a None, such as the lengths of
    fixed-length sequences, stays None) and the weight of its mean loss: its share of the rows times the
    number of ranks (1 when the rows split evenly)."""
    if not here.active:
        return batch, 1.0
    rows = batch[0].shape[0]
    first, end = rows * here.rank // here.size, rows * (here.rank + 1) // here.size
    return tuple(None if t is None else t[first:end] for t in batch), (end - first) * here.size / rows


def mean_over_ranks(value: torch.Tensor, here: World) -> torch.Tensor:
    """The mean of a scalar over the ranks (the global batch's loss from the ranks' weighted losses)."""
    if not here.active:
        return value
    total = value.detach().float().clone()
    dist.all_reduce(total)
    return total / here.size


def rank0_says(flag: bool, here: World, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (a time budget is measured on rank 0's clock)."""
    if not here.active:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())
