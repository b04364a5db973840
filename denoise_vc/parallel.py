"""What one data-parallel worker needs from the others: its shard of each batch and averaged gradients.

The process group (gloo on CPU, NCCL on GPU) is set up by Ray Train (`denoise_vc.distributed`); this module
only uses `torch.distributed`. Gradients are averaged with one all-reduce of a flattened buffer per step,
weighted by each worker's item count, which is the rule DistributedDataParallel applies (without its
bucket overlap). Hooking the optimiser step instead of `forward` lets the diffusion and VC solvers, which
call model methods other than `forward`, train data-parallel unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DataParallel:
    rank: int
    world_size: int

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def shard_batches(self, batches: list[list[int]]) -> list[list[int]]:
        """This worker's part of every global batch (items rank, rank + W, ...). A batch with fewer items
        than workers is skipped by every worker, so all take the same number of steps."""
        return [batch[self.rank :: self.world_size] for batch in batches if len(batch) >= self.world_size]

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """True only when `flag` holds on every worker (so every worker takes the same branch)."""
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item() > 0.5)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter], items: int) -> None:
        """Replace each gradient by the item-weighted mean over workers: sum(n_r * g_r) / sum(n_r), the
        gradient of the mean loss over the whole global batch when each worker's loss is a mean over its
        items."""
        params = [p for p in parameters if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [torch.ones(1, device=grads[0].device)]) * float(items)
        dist.all_reduce(flat)
        flat = flat[:-1] / flat[-1]
        offset = 0
        for p, g in zip(params, grads):
            size = g.numel()
            p.grad = flat[offset : offset + size].view_as(g).to(g.dtype)
            offset += size

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) over workers, so every worker, and
        the chief's checkpoint, holds statistics of all workers' data; integer counters are equal anyway."""
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer)
                buffer /= self.world_size

    def mean(self, value: float, device: torch.device) -> float:
        total = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return float(total.item()) / self.world_size

    def broadcast(self, value: Any) -> Any:
        """The chief's `value`, on every worker."""
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        """Every worker's `value`, in rank order, on every worker."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out


class RecordedBatches:
    """A batch sampler over fixed index lists that remembers which items the loader actually drew."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.drawn: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            self.drawn.extend(batch)
            yield batch

    def __len__(self) -> int:
        return len(self.batches)
