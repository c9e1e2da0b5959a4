"""Batches for the three objectives, drawn from the prepared arrays (``pretrain.prepare``) with a seeded generator.

* ``LMBatches``: random windows of ``block_size + 1`` tokens of a uint16 stream (nanoGPT's ``get_batch``);
  ``input_ids`` ``(B, T)``, ``labels`` ``(B, T)`` shifted by one.
* ``LinkBatches``: ``P`` train edges of the link split, ``N`` type-constrained negatives each (the candidates of
  a relation's head or tail are the entities seen there in the split: pykeen's constraints from data), the
  distinct entities' name tokens, so each entity is encoded once per batch, and for each positive which of those
  entities are allowed negatives on each side (every batch entity of the right type serves every positive).
* ``SFTBatches``: stage-2 examples, right-padded; labels are -100 on the prompt and the padding, so the loss is
  taken on the answer only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pretrain.data import EdgeSplit
from pretrain.kg_scoring import corrupt

IGNORE = -100


class LMBatches:
    def __init__(self, path: Path, block_size: int, batch_size: int, generator: torch.Generator) -> None:
        self.tokens = np.memmap(path, dtype=np.uint16, mode="r")
        if len(self.tokens) <= block_size + 1:
            raise ValueError(f"{path} holds {len(self.tokens)} tokens, fewer than one block of {block_size + 1}")
        self.block_size, self.batch_size, self.generator = block_size, batch_size, generator

    def __next__(self) -> dict[str, Tensor]:
        starts = torch.randint(len(self.tokens) - self.block_size - 1, (self.batch_size,), generator=self.generator)
        rows = np.stack([self.tokens[s:s + self.block_size + 1] for s in starts.tolist()]).astype(np.int64)
        rows = torch.from_numpy(rows)
        return {"input_ids": rows[:, :-1], "labels": rows[:, 1:]}

    def sequential(self, max_batches: int) -> list[dict[str, Tensor]]:
        """Consecutive non-overlapping windows from the start (perplexity on held-out text)."""
        out, step = [], self.block_size + 1
        for b in range(max_batches):
            starts = [(b * self.batch_size + i) * step for i in range(self.batch_size)]
            starts = [s for s in starts if s + step <= len(self.tokens)]
            if not starts:
                break
            rows = torch.from_numpy(np.stack([self.tokens[s:s + step] for s in starts]).astype(np.int64))
            out.append({"input_ids": rows[:, :-1], "labels": rows[:, 1:]})
        return out


class LinkBatches:
    def __init__(self, split: EdgeSplit, names: np.ndarray, lengths: np.ndarray, batch_size: int,
                 negatives: int, generator: torch.Generator, frozen: np.ndarray | Tensor | None = None) -> None:
        edges = split.link_train()
        self.head = torch.from_numpy(edges.head.astype(np.int64))
        self.relation = torch.from_numpy(edges.relation.astype(np.int64))
        self.tail = torch.from_numpy(edges.tail.astype(np.int64))
        every = [split.train, split.held_out]
        self.candidates: dict[tuple[int, str], Tensor] = {}
        # allowed[end][r, e]: entity e is seen at that end of relation r (the type constraint as a mask)
        self.allowed = {end: torch.zeros(len(split.relations), len(names), dtype=torch.bool)
                        for end in ("head", "tail")}
        for r in range(len(split.relations)):
            for end in ("head", "tail"):
                seen = np.unique(np.concatenate([getattr(e, end)[e.relation == r] for e in every]))
                if len(seen):
                    self.candidates[(r, end)] = torch.from_numpy(seen.astype(np.int64))
                    self.allowed[end][r, self.candidates[(r, end)]] = True
        self.names, self.lengths = torch.from_numpy(names.astype(np.int64)), torch.from_numpy(lengths.astype(np.int64))
        self.frozen = frozen  # (n, L, H) the names' states after the model's frozen blocks, or None
        self.batch_size, self.negatives, self.generator = batch_size, negatives, generator

    def __next__(self) -> dict[str, Tensor]:
        pick = torch.randint(len(self.head), (self.batch_size,), generator=self.generator)
        h, r, t = self.head[pick], self.relation[pick], self.tail[pick]
        relations = r.tolist()
        neg_h, neg_t = corrupt(h, r, t, self.negatives, self.candidates, [(x, "head") for x in relations],
                               [(x, "tail") for x in relations], self.generator)
        entities, rows = torch.unique(torch.cat([h, t, neg_h.flatten(), neg_t.flatten()]), return_inverse=True)
        p = len(h)
        head_rows, tail_rows = rows[:p], rows[p:2 * p]
        positives = torch.arange(p)
        head_ok, tail_ok = self.allowed["head"][r][:, entities], self.allowed["tail"][r][:, entities]
        head_ok[positives, head_rows] = False
        tail_ok[positives, tail_rows] = False
        batch = {"names": self.names[entities], "lengths": self.lengths[entities], "relation": r,
                 "head": head_rows, "tail": tail_rows, "head_ok": head_ok, "tail_ok": tail_ok, "entities": entities}
        if self.frozen is not None:
            batch["frozen"] = torch.as_tensor(np.asarray(self.frozen[entities.numpy()]))
        return batch


class SFTBatches:
    def __init__(self, path: Path, batch_size: int, pad: int, generator: torch.Generator) -> None:
        with np.load(path) as arrays:
            self.tokens, self.offsets = arrays["tokens"], arrays["offsets"]
            self.prompt_lengths = arrays["prompt_lengths"]
        if len(self.prompt_lengths) == 0:
            raise ValueError(f"{path} holds no examples")
        self.batch_size, self.pad, self.generator = batch_size, pad, generator

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    def batch(self, indices: list[int]) -> dict[str, Tensor]:
        rows = [self.tokens[self.offsets[i]:self.offsets[i + 1]] for i in indices]
        width = max(len(row) for row in rows) - 1
        input_ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for k, (i, row) in enumerate(zip(indices, rows, strict=True)):
            row = torch.from_numpy(row.astype(np.int64))
            input_ids[k, :len(row) - 1] = row[:-1]
            start = int(self.prompt_lengths[i]) - 1  # the first answer token is predicted at the prompt's last
            labels[k, start:len(row) - 1] = row[start + 1:]
        return {"input_ids": input_ids, "labels": labels}

    def __next__(self) -> dict[str, Tensor]:
        pick = torch.randint(len(self), (self.batch_size,), generator=self.generator)
        return self.batch(pick.tolist())
