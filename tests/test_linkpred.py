"""Filtered, type-constrained link-prediction evaluation and the PyKEEN baselines (``pretrain/linkpred.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pretrain.data import DEFAULT_HOLDOUT, RELATIONS, Edges, EdgeSplit, split_edges
from pretrain.kg_scoring import INTERACTIONS
from pretrain.linkpred import (
    EmbeddingScorer,
    PyKEENScorer,
    RankingMetrics,
    compare_baselines,
    evaluate,
    format_table,
    rank_edges,
    sample_edges,
    train_pykeen,
    triples_factory,
)


@pytest.fixture(scope="module")
def split(kg) -> EdgeSplit:
    return split_edges(kg, seed=0)


def _edges(triples: list[tuple[int, int, int]]) -> Edges:
    h, r, t = (np.array(column) for column in zip(*triples, strict=True))
    return Edges(h.astype(np.int32), r.astype(np.int8), t.astype(np.int32), np.array([f"t{i}" for i in range(len(h))]))


@pytest.fixture
def tiny() -> EdgeSplit:
    """Six entities, relation 0: train (0,0,2) (0,0,3) (1,0,4); held out (1,0,2). Tail candidates of relation 0
    are {2, 3, 4}, head candidates {0, 1}; entity 5 is no candidate of it."""
    return EdgeSplit(entities=np.array([f"E:{i}" for i in range(6)]), relations=RELATIONS,
                     train=_edges([(0, 0, 2), (0, 0, 3), (1, 0, 4), (5, 1, 0)]), held_out=_edges([(1, 0, 2)]),
                     seed=0, fractions=DEFAULT_HOLDOUT, build_id="tiny")


class TableScorer:
    """Scores every triple with ``table(h, r, t)``; scores all entities, then keeps the candidates."""

    def __init__(self, num_entities: int, table) -> None:
        self.num_entities, self.table = num_entities, table

    def _scores(self, rows: list[list[float]], candidates):
        scores = torch.tensor(rows, dtype=torch.float32)
        return scores if candidates is None else scores[:, candidates]

    def score_tails(self, h, r, candidates=None):
        return self._scores([[self.table(a, b, e) for e in range(self.num_entities)]
                             for a, b in zip(h.tolist(), r.tolist(), strict=True)], candidates)

    def score_heads(self, r, t, candidates=None):
        return self._scores([[self.table(e, b, a) for e in range(self.num_entities)]
                             for b, a in zip(r.tolist(), t.tolist(), strict=True)], candidates)


def _known(split: EdgeSplit) -> set[tuple[int, int, int]]:
    return {(h, r, t) for part in (split.train, split.held_out)
            for h, r, t in zip(part.head.tolist(), part.relation.tolist(), part.tail.tolist(), strict=True)}


def _brute_force_ranks(split: EdgeSplit, score) -> tuple[list[float], list[float]]:
    """Filtered, type-constrained realistic ranks by a plain loop, scoring each candidate with ``score(h, r, t)``."""
    known = _known(split)
    tails_of = {r: {t for _, rr, t in known if rr == r} for r in range(len(split.relations))}
    heads_of = {r: {h for h, rr, _ in known if rr == r} for r in range(len(split.relations))}

    def rank(true: float, others: list[float]) -> float:
        optimistic = 1 + sum(s > true for s in others)
        pessimistic = 1 + sum(s >= true for s in others)
        return (optimistic + pessimistic) / 2

    head_ranks, tail_ranks = [], []
    held = split.held_out
    for h, r, t in zip(held.head.tolist(), held.relation.tolist(), held.tail.tolist(), strict=True):
        tail_ranks.append(rank(score(h, r, t), [score(h, r, c) for c in tails_of[r] if (h, r, c) not in known]))
        head_ranks.append(rank(score(h, r, t), [score(c, r, t) for c in heads_of[r] if (c, r, t) not in known]))
    return head_ranks, tail_ranks


@pytest.mark.parametrize("interaction", ["transe", "distmult"])
def test_ranks_match_a_brute_force_reference(split, interaction):
    # small integer embeddings: exact float arithmetic, and many ties
    generator = torch.Generator().manual_seed(0)
    entity = torch.randint(-2, 3, (len(split.entities), 3), generator=generator).float()
    relation = torch.randint(-2, 3, (len(split.relations), 3), generator=generator).float()
    score_fn = INTERACTIONS[interaction]
    head_ranks, tail_ranks = _brute_force_ranks(
        split, lambda h, r, t: float(score_fn(entity[h], relation[r], entity[t])))
    ranks = rank_edges(EmbeddingScorer(entity, relation, interaction), split, split.held_out, batch_size=7)
    np.testing.assert_array_equal(ranks.head_rank, head_ranks)
    np.testing.assert_array_equal(ranks.tail_rank, tail_ranks)
    assert any(r != int(r) for r in head_ranks + tail_ranks)  # some ties were split


@pytest.mark.parametrize("interaction", ["transe", "distmult"])
def test_embedding_scorer_equals_the_kg_scoring_functions(interaction):
    entity, relation = torch.randn(9, 5), torch.randn(2, 5)
    scorer, score = EmbeddingScorer(entity, relation, interaction), INTERACTIONS[interaction]
    h, r, t = torch.tensor([0, 3, 8]), torch.tensor([1, 0, 1]), torch.tensor([2, 2, 5])
    torch.testing.assert_close(scorer.score_tails(h, r), score(entity[h], relation[r], entity[None]))
    torch.testing.assert_close(scorer.score_heads(r, t), score(entity[None], relation[r], entity[t]))
    candidates = torch.tensor([4, 1])
    torch.testing.assert_close(scorer.score_tails(h, r, candidates), scorer.score_tails(h, r)[:, candidates])
    with pytest.raises(ValueError, match="interaction"):
        EmbeddingScorer(entity, relation, "complex")
    with pytest.raises(ValueError, match=r"\(n, D\)"):
        EmbeddingScorer(entity, relation[:, :3])


def test_a_perfect_scorer_gets_mrr_1(split):
    known = _known(split)
    result = evaluate(TableScorer(len(split.entities), lambda h, r, t: float((h, r, t) in known)), split)
    assert result.overall == RankingMetrics(1.0, 1.0, 1.0, 1.0, 2 * len(split.held_out))
    assert result.edges == len(split.held_out) and result.head.queries == result.tail.queries == len(split.held_out)
    assert set(result.per_relation) == {split.relations[r].value for r in set(split.held_out.relation.tolist())}
    assert all(m.mrr == 1.0 for m in result.per_relation.values())


def test_ties_get_the_realistic_rank(tiny):
    ranks = rank_edges(TableScorer(6, lambda h, r, t: 0.0), tiny, tiny.held_out)
    # tail (1, 0, ?): candidates {2, 3, 4}, 4 is another known tail -> 2 ties with 3 -> rank 1.5
    # head (?, 0, 2): candidates {0, 1}, 0 is another known head -> alone -> rank 1
    assert ranks.tail_rank.tolist() == [1.5] and ranks.head_rank.tolist() == [1.0]
    metrics = RankingMetrics.from_ranks(np.array([1.5, 1.0]))
    assert (metrics.mrr, metrics.hits_at_1, metrics.hits_at_3, metrics.queries) == (pytest.approx(5 / 6), 0.5, 1.0, 2)


def test_the_filter_and_the_type_constraint_remove_candidates(tiny):
    # scores rise with the entity index: unfiltered, tail 2 would come after 3, 4 and 5
    ranks = rank_edges(TableScorer(6, lambda h, r, t: float(t)), tiny, tiny.held_out)
    assert ranks.tail_rank.tolist() == [2.0]  # 4 is another true tail, 5 is never a tail of relation 0
    ranks = rank_edges(TableScorer(6, lambda h, r, t: -float(h)), tiny, tiny.held_out)
    assert ranks.head_rank.tolist() == [1.0]  # 0 scores higher but (0, 0, 2) is a known triple


def test_evaluate_checks_the_scorer(tiny):
    with pytest.raises(ValueError, match="7 entities, the split has 6"):
        evaluate(TableScorer(7, lambda h, r, t: 0.0), tiny)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(TableScorer(6, lambda h, r, t: float("nan")), tiny)
    with pytest.raises(ValueError, match="not an edge of the split"):
        rank_edges(TableScorer(6, lambda h, r, t: 0.0), tiny, _edges([(1, 0, 5)]))  # 5 is no tail of relation 0


def test_sample_edges_is_stratified_and_seeded(split):
    held = split.held_out
    assert sample_edges(held, None) is held
    limit = len(held) // 2
    sample = sample_edges(held, limit, seed=0)
    assert len(sample) <= limit and set(sample.triple_id.tolist()) <= set(held.triple_id.tolist())
    counts, full = sample.counts(), held.counts()
    smallest = min((n, r) for r, n in full.items() if n > 0)[1]
    assert counts[smallest] == full[smallest]  # small relations are kept whole
    assert all(counts[r] > 0 for r, n in full.items() if n > 0)
    assert sample.triple_id.tolist() == sample_edges(held, limit, seed=0).triple_id.tolist()
    assert sample.triple_id.tolist() != sample_edges(held, limit, seed=1).triple_id.tolist()
    with pytest.raises(ValueError, match="limit"):
        sample_edges(held, 0)


@pytest.mark.parametrize("model_name", ["TransE", "DistMult", "RotatE"])
def test_train_pykeen_ids_align_with_the_split(split, model_name):
    link = split.link_train()
    factory = triples_factory(link, split)
    assert factory.num_entities == len(split.entities) and factory.num_relations == len(split.relations)
    np.testing.assert_array_equal(factory.mapped_triples.numpy(),
                                  np.stack([link.head, link.relation, link.tail], axis=1))
    model, info = train_pykeen(split, model_name, dim=8, epochs=3, seed=0, time_budget_s=0.0, batch_size=256)
    assert info.epochs_run == 1 and len(info.losses) == 1 and info.config.dim == 8  # the budget stops it at once
    assert info.num_parameters == model.num_parameters > 0 and info.wall_s > 0
    scorer = PyKEENScorer(model)
    h, r, t = (int(link.head[0]), int(link.relation[0]), int(link.tail[0]))
    direct = model.score_hrt(torch.tensor([[h, r, t]])).item()
    assert scorer.score_tails(torch.tensor([h]), torch.tensor([r]))[0, t].item() == pytest.approx(direct, abs=1e-5)
    assert scorer.score_heads(torch.tensor([r]), torch.tensor([t]))[0, h].item() == pytest.approx(direct, abs=1e-5)
    assert evaluate(scorer, split).overall.queries == 2 * len(split.held_out)


def test_train_pykeen_rejects_unknown_models(split):
    with pytest.raises(ValueError, match="TransE"):
        train_pykeen(split, "ComplEx")


def test_compare_baselines_and_format_table(split):
    runs = compare_baselines(split, time_budget_s=0.0, models=("DistMult",))
    [(name, result, info)] = runs
    assert name == "DistMult" and info.epochs_run == 1 and result.overall.queries == 2 * len(split.held_out)
    table = format_table([(run.name, run.result) for run in runs] + [("LM", result)], {"DistMult": 12.3})
    lines = table.splitlines()
    assert lines[0].split(" | ")[0].strip() == "model" and "train time" in lines[0]
    assert lines[2].startswith("DistMult") and lines[2].endswith("12s") and lines[3].endswith("-")
    assert f"{result.overall.mrr:.4f}" in lines[2]
    assert any(line.startswith("causes_side_effect") for line in lines)
