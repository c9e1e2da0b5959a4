"""Filtered, type-constrained link-prediction evaluation, and PyKEEN baselines to compare against.

One evaluation path for every model: anything that implements :class:`Scorer` (the LM-based model through
:class:`EmbeddingScorer`, a trained PyKEEN model through :class:`PyKEENScorer`) is ranked by :func:`evaluate`.

Protocol (Bordes et al. 2013, "filtered" setting; pykeen's rank-based evaluator)
------------------------------------------------------------------------------
For each held-out edge ``(h, r, t)`` two queries are ranked: ``(h, r, ?)`` with answer ``t`` and ``(?, r, t)``
with answer ``h``.

* **Type constraint.** The candidate tails of relation ``r`` are the entities seen as a tail of ``r`` in any
  edge of the split (train or held out); the candidate heads likewise. These are pykeen-style constraints
  learnt from the data (its ``ranking_domain`` / relation "types"): no side effect is ranked as a drug's
  indication. Held-out edges take part so that every answer is a candidate; an entity seen only in a
  held-out edge therefore tells the evaluator (not the model) that it is a possible answer.
* **Filtering.** Every other known true triple, train or held out, is removed from the candidates: a
  drug's *other* side effects do not count against the one asked about.
* **Ties.** The rank is pykeen's "realistic" rank, the expected rank under random tie-breaking:
  ``(optimistic + pessimistic) / 2`` with ``optimistic = 1 + #{c: s_c > s_true}`` and
  ``pessimistic = 1 + #{c: s_c >= s_true}`` over the remaining candidates, so a constant scorer is not
  rewarded. MRR is ``mean(1 / rank)``, Hits@k is ``mean(rank <= k)``.

Baselines: :func:`train_pykeen` trains TransE, DistMult or RotatE with pykeen (sLCWA, uniform negative
sampling) on ``split.link_train()``, with entity and relation ids equal to the split's indices.
:func:`compare_baselines` trains and evaluates all three; :func:`format_table` renders results as text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from pretrain.data import Edges, EdgeSplit
from pretrain.kg_scoring import INTERACTIONS

if TYPE_CHECKING:  # pykeen is imported where a baseline is trained: it is slow to import
    from pykeen.models import Model
    from pykeen.triples import CoreTriplesFactory

log = logging.getLogger(__name__)

HITS_AT = (1, 3, 10)


class Scorer(Protocol):
    """Scores every candidate entity for a batch of queries; a higher score is more plausible.

    ``candidates`` (C,) restricts the scored entities (the evaluator passes the type-constrained ones, which
    is several times cheaper than scoring all entities); ``None`` scores all ``num_entities``.
    """

    num_entities: int

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor | None = None) -> Tensor:
        """``h, r``: LongTensor (B,) -> scores (B, C) of ``(h[i], r[i], candidates[j])``."""
        ...

    def score_heads(self, r: Tensor, t: Tensor, candidates: Tensor | None = None) -> Tensor:
        """``r, t``: LongTensor (B,) -> scores (B, C) of ``(candidates[j], r[i], t[i])``."""
        ...


class EmbeddingScorer:
    """Entity vectors ``(n, D)`` and relation vectors ``(R, D)`` under a :mod:`pretrain.kg_scoring` interaction.

    The scores equal ``kg_scoring.transe(h, r, t, p)`` / ``kg_scoring.distmult(h, r, t)`` (the tests check
    it), computed without the ``(B, C, D)`` broadcast those make: TransE as ``-cdist(h + r, E, p)`` for
    tails and ``-cdist(t - r, E, p)`` for heads, DistMult as ``(h * r) @ E.T`` and ``(t * r) @ E.T``.
    """

    def __init__(self, entity: Tensor, relation: Tensor, interaction: str = "transe", p: int = 1) -> None:
        if interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {sorted(INTERACTIONS)}, not {interaction!r}")
        if entity.dim() != 2 or relation.dim() != 2 or entity.shape[1] != relation.shape[1]:
            raise ValueError(f"expected entity (n, D) and relation (R, D) embeddings, got {tuple(entity.shape)} "
                             f"and {tuple(relation.shape)}")
        self.entity, self.relation = entity.detach().float(), relation.detach().float()
        self.interaction, self.p = interaction, p
        self.num_entities = entity.shape[0]

    def _score(self, query: Tensor, candidates: Tensor | None) -> Tensor:
        targets = self.entity if candidates is None else self.entity[candidates]
        if self.interaction == "transe":
            return -torch.cdist(query, targets, p=self.p)
        return query @ targets.T

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor | None = None) -> Tensor:
        rel = self.relation[r]
        return self._score(self.entity[h] + rel if self.interaction == "transe" else self.entity[h] * rel, candidates)

    def score_heads(self, r: Tensor, t: Tensor, candidates: Tensor | None = None) -> Tensor:
        # TransE: ||h + r - t|| = ||h - (t - r)||; DistMult is symmetric in h and t
        rel = self.relation[r]
        return self._score(self.entity[t] - rel if self.interaction == "transe" else self.entity[t] * rel, candidates)


class PyKEENScorer:
    """A trained pykeen model (put in eval mode) behind :class:`Scorer`, through ``score_t`` / ``score_h``.

    pykeen's interactions broadcast to ``(B, C, D)``; queries are scored in chunks of at most
    ``max_elements`` such values.
    """

    def __init__(self, model: Model, max_elements: int = 2**24) -> None:
        self.model = model.eval()
        self.num_entities = model.num_entities
        width = sum(p.numel() for p in model.entity_representations.parameters()) // model.num_entities
        self._width = max(1, width)  # real numbers per entity (a complex dim counts twice)
        self.max_elements = max_elements

    def _chunked(self, score, pairs: Tensor, candidates: Tensor | None, side: str) -> Tensor:
        c = self.num_entities if candidates is None else candidates.numel()
        rows = max(1, self.max_elements // (c * self._width))
        with torch.inference_mode():
            return torch.cat([score(pairs[i:i + rows], **{side: candidates}) for i in range(0, len(pairs), rows)])

    def score_tails(self, h: Tensor, r: Tensor, candidates: Tensor | None = None) -> Tensor:
        return self._chunked(self.model.score_t, torch.stack([h, r], dim=1), candidates, "tails")

    def score_heads(self, r: Tensor, t: Tensor, candidates: Tensor | None = None) -> Tensor:
        return self._chunked(self.model.score_h, torch.stack([r, t], dim=1), candidates, "heads")


# --- ranking ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranks:
    """Realistic ranks of the evaluated held-out edges: ``head_rank`` / ``tail_rank`` (m,) float64 ranks of the
    true head / tail, aligned with ``edges``."""

    edges: Edges
    head_rank: np.ndarray
    tail_rank: np.ndarray


@dataclass(frozen=True)
class RankingMetrics:
    """MRR and Hits@{1,3,10} of ``queries`` ranked queries (0.0 for none)."""

    mrr: float
    hits_at_1: float
    hits_at_3: float
    hits_at_10: float
    queries: int

    @classmethod
    def from_ranks(cls, ranks: np.ndarray) -> RankingMetrics:
        if len(ranks) == 0:
            return cls(0.0, 0.0, 0.0, 0.0, 0)
        hits = [float(np.mean(ranks <= k)) for k in HITS_AT]
        return cls(float(np.mean(1.0 / ranks)), *hits, len(ranks))


@dataclass(frozen=True)
class LinkPredictionResult:
    """Metrics over both sides (``overall``), each side, and each relation (both sides; relations with an
    evaluated edge only); ``edges`` held-out edges were evaluated in ``seconds`` (wall time)."""

    overall: RankingMetrics
    head: RankingMetrics
    tail: RankingMetrics
    per_relation: Mapping[str, RankingMetrics]
    edges: int
    seconds: float = field(default=0.0, compare=False)


class _Side:
    """Candidates and known answers of one side (tails or heads) for every relation: the answer entity of
    every edge, sorted by its key ``relation * n + query entity``, so that the known answers of a batch of
    queries are found with two ``searchsorted`` calls."""

    def __init__(self, relation: Tensor, query: Tensor, answer: Tensor, n: int, num_relations: int) -> None:
        self.n = n
        keys = relation * n + query
        order = torch.argsort(keys, stable=True)
        self.keys, self.answers = keys[order], answer[order]
        self.candidates = [torch.unique(answer[relation == r]) for r in range(num_relations)]

    def filter_mask(self, r: int, query: Tensor, column: Tensor) -> Tensor:
        """(B, C) mask of the candidates (columns of ``self.candidates[r]``) that are known answers of each query;
        ``column`` (n,) maps an entity to its candidate column."""
        keys = r * self.n + query
        lo = torch.searchsorted(self.keys, keys)
        counts = torch.searchsorted(self.keys, keys, right=True) - lo
        rows = torch.repeat_interleave(torch.arange(len(query)), counts)
        starts = torch.cumsum(counts, 0) - counts
        index = torch.arange(int(counts.sum())) - starts[rows] + lo[rows]
        mask = torch.zeros(len(query), len(self.candidates[r]), dtype=torch.bool)
        mask[rows, column[self.answers[index]]] = True
        return mask


def _realistic_rank(scores: Tensor, true_score: Tensor, filtered: Tensor) -> Tensor:
    """(B,) realistic ranks; ``filtered`` (B, C) masks out the other known answers and the answer itself."""
    if bool(torch.isnan(scores).any()):
        raise ValueError("the scorer returned NaN scores; ranks would be meaningless")
    kept = ~filtered
    better = ((scores > true_score[:, None]) & kept).sum(1)
    tied = ((scores == true_score[:, None]) & kept).sum(1)
    return 1.0 + better.double() + tied.double() / 2.0  # (optimistic + pessimistic) / 2


def _rank_side(scorer: Scorer, side: _Side, query: Tensor, relation: Tensor, answer: Tensor, batch_size: int,
               score_tails: bool) -> Tensor:
    """(m,) ranks of ``answer`` for the queries ``(query, relation)``. Each distinct query is scored once (a
    drug with 40 held-out side effects is one score row, not 40): that is where the time goes."""
    ranks = torch.empty(len(query), dtype=torch.float64)
    for r in torch.unique(relation).tolist():
        rows = torch.nonzero(relation == r).flatten()
        distinct, inverse = torch.unique(query[rows], return_inverse=True)
        candidates = side.candidates[r]
        column = torch.full((side.n,), -1, dtype=torch.long)
        column[candidates] = torch.arange(len(candidates))
        for start in range(0, len(distinct), batch_size):
            q = distinct[start:start + batch_size]
            rel = torch.full_like(q, r)
            scores = scorer.score_tails(q, rel, candidates) if score_tails else scorer.score_heads(rel, q, candidates)
            if scores.shape != (len(q), len(candidates)):
                raise ValueError(f"scorer returned scores {tuple(scores.shape)}, expected {(len(q), len(candidates))}")
            scores, filtered = scores.detach().float().cpu(), side.filter_mask(r, q, column)
            here = (inverse >= start) & (inverse < start + len(q))
            local, edge = inverse[here] - start, rows[here]
            true_column = column[answer[edge]]
            if bool((true_column < 0).any()):
                raise ValueError("an edge to rank is not an edge of the split: its answer is no candidate")
            row_scores = scores[local]
            true_score = row_scores[torch.arange(len(edge)), true_column]
            ranks[edge] = _realistic_rank(row_scores, true_score, filtered[local])
    return ranks


def rank_edges(scorer: Scorer, split: EdgeSplit, edges: Edges, batch_size: int = 256) -> Ranks:
    """Filtered, type-constrained realistic ranks of the true head and tail of each of ``edges`` (held-out
    edges of ``split``), candidates and known triples taken from all edges of ``split``."""
    n = len(split.entities)
    if scorer.num_entities != n:
        raise ValueError(f"scorer has {scorer.num_entities} entities, the split has {n}: ids would not align")
    every = [np.concatenate([getattr(split.train, name), getattr(split.held_out, name)]).astype(np.int64)
             for name in ("head", "relation", "tail")]
    head, relation, tail = (torch.from_numpy(a) for a in every)
    tails = _Side(relation, head, tail, n, len(split.relations))
    heads = _Side(relation, tail, head, n, len(split.relations))
    h, r, t = (torch.from_numpy(getattr(edges, name).astype(np.int64)) for name in ("head", "relation", "tail"))
    tail_rank = _rank_side(scorer, tails, h, r, t, batch_size, score_tails=True)
    head_rank = _rank_side(scorer, heads, t, r, h, batch_size, score_tails=False)
    return Ranks(edges, head_rank.numpy(), tail_rank.numpy())


def sample_edges(edges: Edges, limit: int | None, seed: int = 0) -> Edges:
    """At most ``limit`` of ``edges``, stratified by relation, in their original order (all when ``None``).

    Max-min fair allocation: relations are served from the smallest up, each taking all its edges or an equal
    share of what is left, so small relations (``treats``, ``indicated_for``) are kept whole when ``limit``
    allows and the big ones are subsampled by ``numpy.random.default_rng(seed)``. Overall metrics of a
    sample therefore weigh relations more evenly than the full held-out set; per-relation metrics do not move.
    """
    if limit is None or limit >= len(edges):
        return edges
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (or None for all edges), not {limit}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(edges.relation, minlength=int(edges.relation.max()) + 1)
    present = [r for r in np.argsort(counts, kind="stable") if counts[r] > 0]
    keep, left = np.zeros(len(edges), dtype=bool), limit
    for position, r in enumerate(present):
        take = min(int(counts[r]), left // (len(present) - position))
        rows = np.flatnonzero(edges.relation == r)
        keep[rng.choice(rows, size=take, replace=False)] = True
        left -= take
    return edges.select(keep)


def evaluate(scorer: Scorer, split: EdgeSplit, limit: int | None = None, seed: int = 0,
             batch_size: int = 256) -> LinkPredictionResult:
    """Rank the held-out edges of ``split`` (a stratified sample of at most ``limit``; see :func:`sample_edges`)
    in the filtered, type-constrained setting of the module docstring; ``batch_size`` queries are scored at once."""
    started = time.perf_counter()
    edges = sample_edges(split.held_out, limit, seed)
    ranks = rank_edges(scorer, split, edges, batch_size)
    both = np.concatenate([ranks.head_rank, ranks.tail_rank])
    relation = np.concatenate([edges.relation, edges.relation])
    per_relation = {split.relations[r].value: RankingMetrics.from_ranks(both[relation == r])
                    for r in np.unique(edges.relation).tolist()}
    result = LinkPredictionResult(
        overall=RankingMetrics.from_ranks(both), head=RankingMetrics.from_ranks(ranks.head_rank),
        tail=RankingMetrics.from_ranks(ranks.tail_rank), per_relation=per_relation, edges=len(edges),
        seconds=time.perf_counter() - started)
    log.info("ranked %d queries of %d held-out edges in %.1fs: MRR %.4f", result.overall.queries, len(edges),
             result.seconds, result.overall.mrr)
    return result


# --- PyKEEN baselines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PyKEENConfig:
    """Hyper-parameters of one baseline (sLCWA, Adam, uniform head/tail corruption, ``num_negatives`` per
    positive). ``dim`` is pykeen's ``embedding_dim``: complex numbers for RotatE, so twice the reals."""

    model: str
    dim: int
    epochs: int
    lr: float
    batch_size: int
    num_negatives: int
    loss: str
    loss_kwargs: Mapping[str, float] = field(default_factory=dict)
    model_kwargs: Mapping[str, object] = field(default_factory=dict)  # more pykeen model arguments


#: Defaults for the full KG (~310k link-train edges, 46k entities). One epoch took about 30s (TransE), 27s
#: (DistMult) and 40s (RotatE) on one thread of a busy 2-core machine, so the three train in ~10 minutes.
#: Chosen by 2-3 epoch runs (MRR on a 3000-edge sample): self-adversarial NSSA beat margin ranking for TransE
#: (0.11 vs 0.035); DistMult learns nothing under pykeen's unit-norm entities + L2 regulariser with softplus
#: (scores stay ~0), so both are off; RotatE's NSSA margin is 3, not 9 (0.094 vs 0.029), its entities
#: starting near the origin; 16 negatives beat 4 (TransE 0.035 vs 0.021).
PYKEEN_DEFAULTS: dict[str, PyKEENConfig] = {
    "TransE": PyKEENConfig("TransE", dim=128, epochs=7, lr=1e-2, batch_size=2048, num_negatives=16,
                           loss="nssa", loss_kwargs={"margin": 9.0, "adversarial_temperature": 1.0}),
    "DistMult": PyKEENConfig("DistMult", dim=128, epochs=7, lr=1e-2, batch_size=2048, num_negatives=16,
                             loss="softplus", model_kwargs={"entity_constrainer": None, "regularizer": None}),
    "RotatE": PyKEENConfig("RotatE", dim=64, epochs=5, lr=1e-2, batch_size=2048, num_negatives=16,
                           loss="nssa", loss_kwargs={"margin": 3.0, "adversarial_temperature": 1.0}),
}


@dataclass(frozen=True)
class TrainInfo:
    """How a baseline was trained: the resolved config, epochs actually run (fewer than ``config.epochs`` when
    the time budget ran out), training wall time in seconds on ``threads`` torch threads, trainable parameters
    and the loss per epoch."""

    config: PyKEENConfig
    epochs_run: int
    wall_s: float
    num_parameters: int
    losses: tuple[float, ...]
    seed: int
    threads: int


def triples_factory(edges: Edges, split: EdgeSplit) -> CoreTriplesFactory:
    """A pykeen ``CoreTriplesFactory`` of ``edges`` whose ids are the split's entity and relation indices."""
    from pykeen.triples import CoreTriplesFactory

    mapped = np.stack([edges.head, edges.relation, edges.tail], axis=1).astype(np.int64)
    return CoreTriplesFactory(torch.from_numpy(mapped), num_entities=len(split.entities),
                              num_relations=len(split.relations))


def train_pykeen(split: EdgeSplit, model_name: str, dim: int | None = None, epochs: int | None = None,
                 seed: int = 0, time_budget_s: float | None = None, **overrides) -> tuple[Model, TrainInfo]:
    """Train ``model_name`` (a key of :data:`PYKEEN_DEFAULTS`) on ``split.link_train()`` on the CPU.

    ``dim``, ``epochs`` and any other :class:`PyKEENConfig` field (``lr=...``) override the defaults. With
    ``time_budget_s``, no epoch is started that would end past the budget at the mean epoch time so far (the
    first always runs). Returns the trained model (wrap it in :class:`PyKEENScorer`) and its :class:`TrainInfo`.
    """
    if model_name not in PYKEEN_DEFAULTS:
        raise ValueError(f"model_name must be one of {sorted(PYKEEN_DEFAULTS)}, not {model_name!r}")
    given = {"dim": dim, "epochs": epochs} | overrides
    config = replace(PYKEEN_DEFAULTS[model_name], **{k: v for k, v in given.items() if v is not None})
    if config.epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {config.epochs}")
    import pykeen.models
    from pykeen.training import SLCWATrainingLoop
    from pykeen.utils import set_random_seed

    set_random_seed(seed)
    factory = triples_factory(split.link_train(), split)
    model = getattr(pykeen.models, model_name)(
        triples_factory=factory, embedding_dim=config.dim, loss=config.loss, loss_kwargs=dict(config.loss_kwargs),
        random_seed=seed, **config.model_kwargs)
    loop = SLCWATrainingLoop(model=model, triples_factory=factory, optimizer="adam",
                             optimizer_kwargs={"lr": config.lr}, negative_sampler="basic",
                             negative_sampler_kwargs={"num_negs_per_pos": config.num_negatives},
                             automatic_memory_optimization=False)  # a GPU memory probe: no use on the CPU
    losses: list[float] = []
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        elapsed = time.perf_counter() - started
        if time_budget_s is not None and losses and elapsed + elapsed / len(losses) > time_budget_s:
            log.info("%s: time budget of %.0fs reached after %d epochs", model_name, time_budget_s, len(losses))
            break
        history = loop.train(factory, num_epochs=epoch, batch_size=config.batch_size, continue_training=epoch > 1,
                             use_tqdm=False, pin_memory=False)
        losses.append(history[-1])  # pykeen returns the loss of every epoch so far
        log.info("%s epoch %d/%d: loss %.4f (%.0fs)", model_name, epoch, config.epochs, losses[-1],
                 time.perf_counter() - started)
    info = TrainInfo(config=config, epochs_run=len(losses), wall_s=time.perf_counter() - started,
                     num_parameters=model.num_parameters, losses=tuple(losses), seed=seed,
                     threads=torch.get_num_threads())
    return model, info


class BaselineRun(NamedTuple):
    """One trained and evaluated baseline: ``name, result, info = run``."""

    name: str
    result: LinkPredictionResult
    info: TrainInfo


def compare_baselines(split: EdgeSplit, time_budget_s: float | None = None,
                      models: Sequence[str] = ("TransE", "DistMult", "RotatE"), limit: int | None = None,
                      seed: int = 0, epochs: int | None = None) -> list[BaselineRun]:
    """Train each of ``models`` with its defaults (``epochs`` overrides theirs; an equal share of
    ``time_budget_s`` of training each) and evaluate it with :func:`evaluate` (``limit``, ``seed``)."""
    runs = []
    for name in models:
        budget = None if time_budget_s is None else time_budget_s / len(models)
        model, info = train_pykeen(split, name, epochs=epochs, seed=seed, time_budget_s=budget)
        runs.append(BaselineRun(name, evaluate(PyKEENScorer(model), split, limit=limit, seed=seed), info))
    return runs


# --- tables -----------------------------------------------------------------------------------------------


def _render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = zip(row, widths, strict=True)
        return " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(cells))

    lines = [line(row) for row in [header, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(rows: Sequence[tuple[str, LinkPredictionResult]],
                 train_time_s: Mapping[str, float] | None = None) -> str:
    """Plain-text tables: one line per model (MRR, Hits@k, ranked queries, training time from ``train_time_s``
    by model name, ``-`` when not given), then the MRR of each model on each relation."""
    times = train_time_s or {}
    main = [[name, *(f"{v:.4f}" for v in (m.mrr, m.hits_at_1, m.hits_at_3, m.hits_at_10)), str(m.queries),
             f"{times[name]:.0f}s" if name in times else "-"]
            for name, m in ((name, result.overall) for name, result in rows)]
    relations = list(dict.fromkeys(r for _, result in rows for r in result.per_relation))
    per_relation = []
    for relation in relations:
        found = [result.per_relation.get(relation) for _, result in rows]
        queries = max(m.queries for m in found if m is not None)
        per_relation.append([relation, str(queries), *(f"{m.mrr:.4f}" if m else "-" for m in found)])
    return "\n\n".join([
        _render(["model", "MRR", "H@1", "H@3", "H@10", "queries", "train time"], main),
        _render(["relation (MRR)", "queries", *(name for name, _ in rows)], per_relation)])
