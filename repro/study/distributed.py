"""Scale-out: split the members of a job over several processes (or GPUs) launched by torchrun.

Each rank trains the seeds `seeds[rank::world]` of every configuration and writes their records into the
same results store; no tensors are exchanged, because members never interact. A barrier at the end lets
rank 0 summarise once every rank is done. Launch:

    torchrun --standalone --nproc_per_node=2 -m repro.cli ablate --all
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, seeds: list[int]) -> list[int]:
        """This rank's seeds: every world-th one, so each rank gets an equal share."""
        return seeds[self.rank :: self.world]

    def device(self, device: torch.device) -> torch.device:
        """On CUDA, one GPU per local rank."""
        if device.type == "cuda" and self.world > 1:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.rank)) % torch.cuda.device_count())
        return device


def init_from_env(device: torch.device) -> Rank:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise a single rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size())


def barrier(rank: Rank) -> None:
    if rank.world > 1 and dist.is_initialized():
        dist.barrier()


def shutdown(rank: Rank) -> None:
    if rank.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
