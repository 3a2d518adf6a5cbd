"""Training on several processes with ``torchrun``: the process group, this rank's share of an
epoch, and sums across ranks.

``torchrun --nproc-per-node=N -m hubkit.cli train CONFIG`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set (multi-node: ``--nnodes`` and ``--rdzv-endpoint``);
`Ranks.start` joins them into one DDP group (NCCL on CUDA, one GPU per local rank; gloo on CPU).
A single process is the same code with one rank and no group.

The ranks together draw exactly a single-process epoch: batch ``k`` of ``batch_size`` crops is
items ``k * batch_size ...``, and rank ``r`` of ``W`` takes the ``r``-th ``batch_size / W`` of it
(`EpochShard`), so with a loss that is a mean over crops (``bce``) the averaged DDP gradient is
the one-process gradient of the whole batch. Batch-pooled losses (``dice``, ``lovasz``) and
MixUp/CutMix are computed within each rank's share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from hubkit.errors import ConfigError
from hubkit.inference.config import resolve_device

__all__ = ["Ranks", "EpochShard"]


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes.

    Attributes:
        rank: this process's number, 0 to ``world - 1``; rank 0 alone writes files.
        world: how many processes train together.
        device: this process's device.
    """

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_name: str) -> "Ranks":
        """One process, or join the group ``torchrun`` set up (from its environment variables).

        Raises:
            ConfigError: a malformed torchrun environment, or more local ranks than GPUs.
        """
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError:
            raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them)") from None
        device = resolve_device(device_name)
        if world <= 1:
            return cls(0, 1, device)
        if device.type == "cuda":
            if local >= torch.cuda.device_count():
                raise ConfigError(f"local rank {local} has no GPU: {torch.cuda.device_count()} visible; "
                                  "use --nproc-per-node at most the GPU count")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=_store(world), rank=rank,
                                    world_size=world)
        return cls(rank, world, device)

    def per_rank_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch.

        Raises:
            ConfigError: a batch that does not split evenly between the ranks.
        """
        if batch_size % self.world:
            raise ConfigError(f"batch_size {batch_size} does not split between {self.world} processes; "
                              f"use a multiple of {self.world}")
        return batch_size // self.world

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the ranks (the values themselves with one rank)."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.cpu().tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Leave the group (after the last fold)."""
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _store(world: int) -> dist.Store:
    """torchrun's key-value store, under a prefix of this restart: after ``--max-restarts`` starts
    the ranks again, gloo would otherwise find the dead ranks' addresses there and never connect."""
    try:
        addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    except (KeyError, ValueError):
        raise ConfigError("MASTER_ADDR and MASTER_PORT must be set (torchrun sets them)") from None
    store = dist.TCPStore(addr, port, world, is_master=False, timeout=timedelta(minutes=10))
    return dist.PrefixStore(f"hubkit/restart-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


class EpochShard(Sampler[int]):
    """This rank's items of a single-process epoch of ``samples`` items in batches of ``batch_size``
    (the last partial batch dropped, as the one-process loader does).

    Example:
        10 items, batch 4, 2 ranks: rank 0 takes 0, 1, 4, 5; rank 1 takes 2, 3, 6, 7.
    """

    def __init__(self, samples: int, batch_size: int, ranks: Ranks):
        self.samples, self.batch_size, self.ranks = samples, batch_size, ranks
        self.per = ranks.per_rank_batch(batch_size)

    def __iter__(self) -> Iterator[int]:
        for k in range(self.samples // self.batch_size):
            start = k * self.batch_size + self.ranks.rank * self.per
            yield from range(start, start + self.per)

    def __len__(self) -> int:
        return (self.samples // self.batch_size) * self.per
