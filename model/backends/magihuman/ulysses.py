"""Ulysses context parallelism for the packed transformer, on plain torch.distributed collectives.

Every rank of a group receives the whole packed batch and keeps a contiguous shard of its rows
(the first `tokens % world` ranks one row more, as the original splits them). Everything but
attention is row-wise, so each rank runs it on its shard alone. Around attention, one
all-to-all trades the row shard for a head shard (all rows, `heads / world` heads), so each rank
attends over the whole sequence for its heads; a second all-to-all trades back. At the end the
ranks all-gather their output rows, so every rank returns the whole batch's output.

Uneven shards travel through `all_to_all_single` with split sizes (gloo and NCCL both have it);
the final gather pads to the longest shard. With fewer key/value heads than ranks, each
key/value head is repeated so every rank holds one, as the original does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


def split_sizes(tokens: int, world: int) -> list[int]:
    """Rows per rank: as even as possible, the remainder on the first ranks."""
    base, extra = divmod(tokens, world)
    return [base + 1 if rank < extra else base for rank in range(world)]


@dataclass(frozen=True)
class UlyssesGroup:
    """A process group this transformer shards its sequence over."""

    group: Any  # torch.distributed.ProcessGroup
    rank: int
    world: int

    @classmethod
    def of(cls, group: Any) -> UlyssesGroup:
        return cls(group, dist.get_rank(group), dist.get_world_size(group))

    def check_heads(self, heads: int, kv_heads: int) -> None:
        """ValueError unless the query heads split evenly over the ranks, and the key/value heads
        either split evenly or repeat evenly onto them."""
        if heads % self.world:
            raise ValueError(f"{heads} attention heads do not divide by ulysses_degree={self.world}")
        if kv_heads % self.world and self.world % kv_heads:
            raise ValueError(
                f"{kv_heads} key/value heads neither divide nor evenly repeat over "
                f"ulysses_degree={self.world}"
            )

    def shard(self, tokens: int) -> SequenceShard:
        """This rank's rows of a `tokens`-row sequence."""
        sizes = split_sizes(tokens, self.world)
        start = sum(sizes[: self.rank])
        return SequenceShard(self, sizes, start, start + sizes[self.rank])


@dataclass(frozen=True)
class SequenceShard:
    """Rows `start`..`end` of the packed sequence, this rank's share; `sizes` are every rank's."""

    ulysses: UlyssesGroup
    sizes: list[int]
    start: int
    end: int

    def rows_to_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[shard rows, heads, d] -> [all rows, heads / world, d] (this rank's heads)."""
        world = self.ulysses.world
        heads = x.shape[1]
        if heads < world:
            x = x.repeat_interleave(world // heads, dim=1)
        rows, per_rank, dim = x.shape[0], x.shape[1] // world, x.shape[2]
        # one block per destination rank: its heads of every local row
        blocks = x.reshape(rows, world, per_rank, dim).transpose(0, 1).contiguous()
        out = x.new_empty(sum(self.sizes), per_rank, dim)
        dist.all_to_all_single(
            out,
            blocks.reshape(world * rows, per_rank, dim),
            output_split_sizes=self.sizes,
            input_split_sizes=[rows] * world,
            group=self.ulysses.group,
        )
        return out

    def heads_to_rows(self, x: torch.Tensor) -> torch.Tensor:
        """[all rows, heads / world, d] -> [shard rows, heads, d], the inverse of `rows_to_heads`."""
        world = self.ulysses.world
        rows = self.end - self.start
        per_rank, dim = x.shape[1], x.shape[2]
        out = x.new_empty(world * rows, per_rank, dim)
        dist.all_to_all_single(
            out,
            x.contiguous(),
            output_split_sizes=[rows] * world,
            input_split_sizes=self.sizes,
            group=self.ulysses.group,
        )
        return out.reshape(world, rows, per_rank, dim).transpose(0, 1).reshape(rows, world * per_rank, dim)

    def gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's [shard rows, ...] in rank order: the whole sequence's [rows, ...]."""
        longest = max(self.sizes)
        padded = x.new_zeros(longest, *x.shape[1:])
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in self.sizes]
        dist.all_gather(parts, padded, group=self.ulysses.group)
        return torch.cat([part[:size] for part, size in zip(parts, self.sizes, strict=True)])
