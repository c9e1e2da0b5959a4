"""Link-prediction scoring functions, negative sampling and losses for the KG pretraining objective.

Everything here is stateless (pykeen's ``nn/modules.py`` and ``losses.py`` style): the entity
representations (pooled from the language model) and the relation embeddings live in the model; these
functions only score, corrupt and reduce.

Conventions
-----------
* A score is higher for a more plausible triple. TransE's score is therefore a *negative* distance.
* ``h``, ``r`` and ``t`` are float tensors whose last dim is the embedding dim ``D``. The dims before it
  are batch dims aligned from the *left*: an input with fewer dims gets singleton dims inserted just
  before ``D``, then ordinary broadcasting applies. So heads ``(B, D)`` and relations ``(B, D)`` score
  against tails ``(B, N, D)`` as if they were ``(B, 1, D)``, giving scores ``(B, N)``; a single vector
  ``(D,)`` broadcasts against everything.
* Positive scores have shape ``(B,)`` and negative scores ``(B, N)``, ``N`` negatives per positive.

References
----------
* Bordes et al. 2013, "Translating Embeddings for Modeling Multi-relational Data" (TransE).
* Yang et al. 2015, "Embedding Entities and Relations for Learning and Inference in Knowledge Bases"
  (DistMult).
* Sun et al. 2019, "RotatE: Knowledge Graph Embedding by Relational Rotation in Complex Space"
  (self-adversarial negative sampling loss).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "INTERACTIONS",
    "corrupt",
    "distmult",
    "in_batch_loss",
    "margin_ranking_loss",
    "self_adversarial_nssa_loss",
    "softplus_loss",
    "transe",
]


def _align(*xs: Tensor) -> list[Tensor]:
    """Insert singleton dims before the last dim so that all inputs have the same number of dims."""
    ndim = max(x.dim() for x in xs)
    return [x.reshape(*x.shape[:-1], *([1] * (ndim - x.dim())), x.shape[-1]) for x in xs]


def transe(h: Tensor, r: Tensor, t: Tensor, p: int = 1) -> Tensor:
    """TransE (Bordes et al. 2013): ``score = -||h + r - t||_p`` over the last dim.

    ``h, r, t``: ``(..., D)``, batch dims aligned from the left (see the module docstring).
    Returns the broadcast batch shape, e.g. ``(B,)`` for positives or ``(B, N)`` against ``(B, N, D)``.
    The score is 0 exactly when ``h + r == t`` and negative otherwise.
    """
    h, r, t = _align(h, r, t)
    return -torch.linalg.vector_norm(h + r - t, ord=p, dim=-1)


def distmult(h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    """DistMult (Yang et al. 2015): ``score = sum_d h_d * r_d * t_d``, a diagonal bilinear form.

    Shapes as for :func:`transe`. Symmetric in ``h`` and ``t``, so it cannot tell a relation from its inverse.
    """
    h, r, t = _align(h, r, t)
    return (h * r * t).sum(dim=-1)


INTERACTIONS: dict[str, Callable[..., Tensor]] = {"transe": transe, "distmult": distmult}


def _as_keys(types: Sequence[Hashable] | Tensor) -> list[Hashable]:
    return types.tolist() if isinstance(types, Tensor) else list(types)


def _replace(
    true: Tensor,
    types: list[Hashable],
    num: int,
    candidates_by_type: Mapping[Hashable, Tensor],
    generator: torch.Generator,
    end: str,
) -> Tensor:
    """``(B, num)`` entities drawn for one end (heads or tails); see :func:`corrupt` for the rules."""
    out = torch.empty(len(types), num, dtype=torch.long)
    if num == 0:
        return out
    true = true.detach().cpu()
    for key in dict.fromkeys(types):  # types in order of first appearance: deterministic draw order
        if key not in candidates_by_type:
            known = sorted(map(str, candidates_by_type))
            raise KeyError(f"no candidates for {end} type {key!r}; candidates_by_type has types {known}")
        candidates = torch.sort(candidates_by_type[key].detach().cpu().long().flatten()).values
        n = candidates.numel()
        if n == 0:
            raise ValueError(f"candidates for {end} type {key!r} are empty; every type needs at least one entity")
        if n > 1 and bool((candidates[1:] == candidates[:-1]).any()):
            raise ValueError(f"candidates for {end} type {key!r} repeat an entity; pass distinct indices")
        rows = torch.tensor([i for i, k in enumerate(types) if k == key], dtype=torch.long)
        if n == 1:
            out[rows] = candidates[0]
            continue
        # position of each true entity among the sorted candidates
        position = torch.searchsorted(candidates, true[rows]).clamp(max=n - 1)
        missing = candidates[position] != true[rows]
        if bool(missing.any()):
            bad = true[rows][missing][0].item()
            raise ValueError(f"{end} entity {bad} is not among the candidates of its type {key!r}")
        # uniform over the n - 1 other candidates: draw in [0, n - 1) and step over the true entity
        draw = torch.randint(0, n - 1, (rows.numel(), num), generator=generator, device=generator.device).cpu()
        draw = draw + (draw >= position.unsqueeze(-1)).long()
        out[rows] = candidates[draw]
    return out


def corrupt(
    heads: Tensor,
    relations: Tensor,
    tails: Tensor,
    num_negatives: int,
    candidates_by_type: Mapping[Hashable, Tensor],
    head_types: Sequence[Hashable] | Tensor,
    tail_types: Sequence[Hashable] | Tensor,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Type-constrained negative sampling: corrupt each positive ``num_negatives`` times.

    ``heads, relations, tails``: ``(B,)`` entity and relation indices of the positives.
    ``candidates_by_type``: entity type -> 1-d LongTensor of the *distinct* entity indices of that type.
    ``head_types, tail_types``: length-``B`` type keys (a list or a 1-d tensor) of each head and tail.

    Returns ``(neg_heads, neg_tails)``, two LongTensors ``(B, num_negatives)`` on ``heads.device``; the
    relation is never corrupted, so negative ``j`` of positive ``i`` is
    ``(neg_heads[i, j], relations[i], neg_tails[i, j])``. Exactly:

    * columns ``[0, num_negatives // 2)`` replace the head and keep the true tail; the remaining
      ``num_negatives - num_negatives // 2`` columns keep the true head and replace the tail (an odd
      count gives the extra negative to the tail);
    * a replacement is drawn uniformly, with replacement across columns, from the candidates of the
      replaced end's type *minus the true entity*, so it never equals it when the type has two or more
      candidates; a type with a single candidate yields that candidate, i.e. the true entity itself
      (no negative exists for it);
    * a replaced entity missing from its type's candidates, an unknown or empty type, or repeated
      candidates raise an error;
    * draws come only from ``generator``: heads first, then tails, each type in order of first appearance
      in ``head_types`` / ``tail_types``; the same inputs and generator state give the same negatives.

    Negatives are not filtered against other known true triples (pykeen's "unfiltered" sampling).
    """
    if heads.dim() != 1 or heads.shape != relations.shape or heads.shape != tails.shape:
        raise ValueError(
            f"heads, relations and tails must be 1-d of the same length, got {tuple(heads.shape)}, "
            f"{tuple(relations.shape)}, {tuple(tails.shape)}"
        )
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1, got {num_negatives}")
    head_keys, tail_keys = _as_keys(head_types), _as_keys(tail_types)
    if len(head_keys) != heads.numel() or len(tail_keys) != heads.numel():
        raise ValueError(
            f"head_types and tail_types need one type per positive ({heads.numel()}), "
            f"got {len(head_keys)} and {len(tail_keys)}"
        )
    num_heads = num_negatives // 2
    num_tails = num_negatives - num_heads
    replaced_heads = _replace(heads, head_keys, num_heads, candidates_by_type, generator, "head")
    replaced_tails = _replace(tails, tail_keys, num_tails, candidates_by_type, generator, "tail")
    true_heads = heads.detach().cpu().long().unsqueeze(-1)
    true_tails = tails.detach().cpu().long().unsqueeze(-1)
    neg_heads = torch.cat([replaced_heads, true_heads.expand(-1, num_tails)], dim=-1)
    neg_tails = torch.cat([true_tails.expand(-1, num_heads), replaced_tails], dim=-1)
    return neg_heads.to(heads.device), neg_tails.to(heads.device)


def _check_scores(pos: Tensor, neg: Tensor) -> None:
    if neg.dim() != pos.dim() + 1 or neg.shape[:-1] != pos.shape:
        raise ValueError(
            f"expected positive scores (B,) and negative scores (B, N), got {tuple(pos.shape)} and {tuple(neg.shape)}"
        )


def margin_ranking_loss(pos: Tensor, neg: Tensor, margin: float = 1.0) -> Tensor:
    """Pairwise hinge loss (Bordes et al. 2013): ``mean_{i,j} relu(margin - pos_i + neg_ij)``.

    ``pos``: ``(B,)`` scores of the positives; ``neg``: ``(B, N)`` scores of their negatives. The mean runs
    over all ``B * N`` (positive, negative) pairs. Zero once every positive beats each of its negatives
    by at least ``margin``.
    """
    _check_scores(pos, neg)
    return F.relu(margin - pos.unsqueeze(-1) + neg).mean()


def softplus_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Logistic (negative-sampling softplus) loss: ``mean_i softplus(-pos_i) + mean_{i,j} softplus(neg_ij)``.

    The binary cross-entropy with logits of labels 1 for positives and 0 for negatives, each group
    averaged on its own so the weight of the negatives does not grow with ``N`` (pykeen's
    ``SoftplusLoss`` with negative sampling). Shapes as for :func:`margin_ranking_loss`.
    """
    _check_scores(pos, neg)
    return F.softplus(-pos).mean() + F.softplus(neg).mean()


def self_adversarial_nssa_loss(pos: Tensor, neg: Tensor, margin: float = 9.0, temperature: float = 1.0) -> Tensor:
    """Self-adversarial negative sampling loss of RotatE (Sun et al. 2019, Eqs. 4-5), averaged over the batch.

    With scores ``s`` (``= -distance``), ``gamma = margin`` and ``alpha = temperature``::

        w_ij = softmax_j(alpha * neg_ij)              # detached: a sampling weight, not a gradient path
        loss = mean_i[ -log sigmoid(gamma + pos_i) - sum_j w_ij * log sigmoid(-gamma - neg_ij) ]

    ``alpha`` multiplies the scores, so ``alpha = 0`` weighs the negatives uniformly (the plain
    negative-sampling loss of Eq. 4 with ``1/N`` weights) and a larger ``alpha`` focuses on the hardest
    negatives. The official RotatE code halves this sum, which only rescales the learning rate.
    Defaults are pykeen's ``NSSALoss`` defaults. Shapes as for :func:`margin_ranking_loss`.
    """
    _check_scores(pos, neg)
    weights = torch.softmax(temperature * neg, dim=-1).detach()
    pos_term = -F.logsigmoid(margin + pos)
    neg_term = -(weights * F.logsigmoid(-margin - neg)).sum(dim=-1)
    return (pos_term + neg_term).mean()


def in_batch_loss(pos: Tensor, scores: Tensor, allowed: Tensor) -> Tensor:
    """Cross-entropy of each positive against the allowed candidates of its row (1-vs-many, in-batch negatives):
    ``mean_i [ -pos_i + log(exp(pos_i) + sum_{j: allowed_ij} exp(scores_ij)) ]``.

    ``pos``: ``(B,)``; ``scores``: ``(B, E)``, the positive's query scored against every entity of the batch;
    ``allowed``: ``(B, E)`` bool, the entities that are negatives for that row (type-constrained, the true
    answer excluded). One encoding of a batch's entities serves as negatives for all of its positives, so the
    negatives per positive grow with the batch at no extra language-model cost (the softmax over candidates
    is the objective whose optimum ranks the true answer first, what MRR measures).
    """
    _check_scores(pos, scores)
    if allowed.shape != scores.shape or allowed.dtype != torch.bool:
        raise ValueError(f"allowed must be a bool mask of shape {tuple(scores.shape)}")
    logits = torch.cat([pos.unsqueeze(-1), scores.masked_fill(~allowed, float("-inf"))], dim=-1)
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=pos.device))
