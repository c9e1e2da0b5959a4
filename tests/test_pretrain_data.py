"""The held-out edge split and the verbalised training texts (``pretrain/data.py``) on the fixture KG."""

from __future__ import annotations

import dataclasses
import json
import string

import numpy as np
import pytest

from kg.errors import KGError
from kg.vocab import Relation
from pretrain.data import (
    DEFAULT_HOLDOUT,
    MANIFEST_NAME,
    NPZ_NAME,
    PHRASINGS,
    RELATIONS,
    Edges,
    EdgeSplit,
    EdgeSplitMismatchError,
    entity_names,
    holdout_size,
    leaks,
    split_edges,
    training_texts,
    verbalise,
)


@pytest.fixture(scope="module")
def split(kg) -> EdgeSplit:
    return split_edges(kg, seed=0)


def _all_counts(kg) -> dict[Relation, int]:
    adjacency = kg.adjacency
    relation = np.empty(len(adjacency.head), dtype=np.int8)
    relation[adjacency.edge] = adjacency.relation
    return {r: int(n) for r, n in zip(RELATIONS, np.bincount(relation, minlength=len(RELATIONS)), strict=True)}


def _assert_same_edges(a: Edges, b: Edges) -> None:
    for name in Edges.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_holdout_size_rounds_half_up():
    assert [holdout_size(n, 0.05) for n in (0, 1, 9, 10, 29, 30, 100)] == [0, 0, 0, 1, 1, 2, 5]
    assert [holdout_size(n, 0.10) for n in (4, 5, 14, 15, 755)] == [0, 1, 1, 2, 76]


def test_default_fractions():
    assert DEFAULT_HOLDOUT[Relation.TREATS] == DEFAULT_HOLDOUT[Relation.INDICATED_FOR] == 0.10
    assert all(DEFAULT_HOLDOUT[r] == 0.05 for r in Relation if r not in (Relation.TREATS, Relation.INDICATED_FOR))


def test_split_sizes_per_relation_match_the_fractions(kg, split):
    totals, train, held = _all_counts(kg), split.train.counts(), split.held_out.counts()
    assert sum(totals.values()) > 300  # the fixture has every relation, several with >= 10 edges
    for relation, n in totals.items():
        assert held[relation.value] == holdout_size(n, DEFAULT_HOLDOUT[relation]), relation
        assert train[relation.value] + held[relation.value] == n, relation
    assert held["causes_side_effect"] > 0 and held["subclass_of"] > 0


def test_split_is_a_partition_of_all_edges(kg, split):
    adjacency = kg.adjacency
    train_ids, held_ids = set(split.train.triple_id.tolist()), set(split.held_out.triple_id.tolist())
    assert not train_ids & held_ids
    assert train_ids | held_ids == set(adjacency.triple_ids.tolist())
    assert len(split.train) + len(split.held_out) == len(adjacency.head)
    # each row is the KG's own edge: same ends and relation as the adjacency says for that triple id
    edge = {tid: i for i, tid in enumerate(adjacency.triple_ids.tolist())}
    relation = np.empty(len(adjacency.head), dtype=np.int8)
    relation[adjacency.edge] = adjacency.relation
    for part in (split.train, split.held_out):
        rows = np.array([edge[tid] for tid in part.triple_id.tolist()])
        np.testing.assert_array_equal(part.head, adjacency.head[rows])
        np.testing.assert_array_equal(part.tail, adjacency.tail[rows])
        np.testing.assert_array_equal(part.relation, relation[rows])
    assert split.entities.tolist() == adjacency.ids.tolist() and split.relations == tuple(Relation)
    assert split.build_id == kg.manifest["build_id"]


def test_split_is_deterministic_by_seed(kg, split):
    again = split_edges(kg, seed=0)
    _assert_same_edges(split.train, again.train)
    _assert_same_edges(split.held_out, again.held_out)
    other = split_edges(kg, seed=1)
    assert set(other.held_out.triple_id.tolist()) != set(split.held_out.triple_id.tolist())
    assert other.held_out.counts() == split.held_out.counts()


def test_split_fractions_can_be_overridden_and_are_checked(kg):
    custom = split_edges(kg, holdout={"treats": 0.5, Relation.SUBCLASS_OF: 0.0})
    totals = _all_counts(kg)
    assert custom.held_out.counts()["treats"] == holdout_size(totals[Relation.TREATS], 0.5)
    assert custom.held_out.counts()["subclass_of"] == 0
    assert custom.fractions[Relation.IN_CLASS] == 0.05
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_edges(kg, holdout={"treats": 1.0})
    with pytest.raises(ValueError):
        split_edges(kg, holdout={"cures": 0.1})


def test_save_load_round_trip(kg, split, tmp_path):
    split.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["seed"] == 0 and manifest["kg_build_id"] == kg.manifest["build_id"]
    assert manifest["counts"]["treats"]["held_out"] == split.held_out.counts()["treats"]
    assert manifest["fractions"]["indicated_for"] == 0.10
    loaded = EdgeSplit.load(tmp_path, kg)
    _assert_same_edges(loaded.train, split.train)
    _assert_same_edges(loaded.held_out, split.held_out)
    assert loaded.entities.tolist() == split.entities.tolist()
    assert (loaded.relations, loaded.seed, loaded.build_id) == (split.relations, split.seed, split.build_id)
    assert dict(loaded.fractions) == dict(split.fractions)


def test_load_rejects_a_mismatched_split(kg, split, tmp_path):
    with pytest.raises(EdgeSplitMismatchError, match="missing"):
        EdgeSplit.load(tmp_path / "nowhere")
    split.save(tmp_path)
    manifest_path = tmp_path / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "kg_build_id": "another-build"}))
    EdgeSplit.load(tmp_path)  # without a KG there is nothing to compare the build id with
    with pytest.raises(EdgeSplitMismatchError, match="python -m pretrain.data") as error:
        EdgeSplit.load(tmp_path, kg)
    assert isinstance(error.value, KGError) and "another-build" in str(error.value)
    counts = {**manifest["counts"], "treats": {"train": 0, "held_out": 0}}
    manifest_path.write_text(json.dumps({**manifest, "counts": counts}))
    with pytest.raises(EdgeSplitMismatchError, match="counts"):
        EdgeSplit.load(tmp_path, kg)
    manifest_path.write_text(json.dumps(manifest))
    with open(tmp_path / NPZ_NAME, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(EdgeSplitMismatchError, match="checksum"):
        EdgeSplit.load(tmp_path, kg)
    for damaged in (json.dumps(manifest)[:40], "[1, 2]"):  # truncated, or not an object
        manifest_path.write_text(damaged)
        with pytest.raises(EdgeSplitMismatchError, match="python -m pretrain.data"):
            EdgeSplit.load(tmp_path, kg)


def test_every_relation_has_phrasings_in_both_directions():
    assert set(PHRASINGS) == set(Relation)
    for relation, phrasings in PHRASINGS.items():
        assert len(set(phrasings)) == len(phrasings), relation
        for phrasing in phrasings:
            fields = [field for _, field, _, _ in string.Formatter().parse(phrasing) if field is not None]
            assert sorted(fields) == ["h", "t"], phrasing
            assert "{h}," not in phrasing and "{t}," not in phrasing and not phrasing.endswith((".", "}."))
        head_first = sum(p.index("{h}") < p.index("{t}") for p in phrasings)
        assert head_first >= 3 and len(phrasings) - head_first >= 3, relation


def test_verbalise():
    side_effect = Relation.CAUSES_SIDE_EFFECT
    assert verbalise("metformin", side_effect, "nausea", 0) == "metformin can cause nausea"
    assert verbalise("metformin", "causes_side_effect", "nausea", 3) == "nausea is a reported side effect of metformin"
    assert verbalise("metformin", side_effect, "nausea", 2) == "one side effect of metformin is nausea"
    with pytest.raises(ValueError, match="phrasings"):
        verbalise("metformin", side_effect, "nausea", len(PHRASINGS[side_effect]))


def test_leaks_matches_whole_names_leftmost_longest():
    tiny = EdgeSplit(
        entities=np.array(["DOID:1", "DOID:2", "DRUGBANK:3"]), relations=RELATIONS,
        train=Edges(np.array([2], np.int32), np.array([0], np.int8), np.array([0], np.int32), np.array(["x"])),
        held_out=Edges(np.array([0], np.int32), np.array([11], np.int8), np.array([1], np.int32), np.array(["y"])),
        seed=0, fractions=DEFAULT_HOLDOUT, build_id="b")
    names = ["type 2 diabetes mellitus", "Diabetes  mellitus", "metformin"]
    assert leaks(["metformin treats type 2 diabetes mellitus", "diabetes mellitus includes nothing else"],
                 tiny, names) == []
    found = leaks(["one type of diabetes mellitus is Type 2 Diabetes mellitus"], tiny, names)
    assert [(leak.head, leak.tail) for leak in found] == [("diabetes mellitus", "type 2 diabetes mellitus")]


def test_training_texts_verbalise_train_edges_without_leaks(kg, split):
    texts = list(training_texts(kg, split, seed=0))
    names = entity_names(kg, split)
    assert leaks(texts, split, names) == []
    assert texts == list(training_texts(kg, split, seed=0))
    assert texts != list(training_texts(kg, split, seed=1))
    # the fixture has train edges repeating a held-out pair under another relation: they are left out
    held_pairs = {frozenset(p) for p in zip(split.held_out.head.tolist(), split.held_out.tail.tolist(), strict=True)}
    repeats = sum(frozenset(p) in held_pairs
                  for p in zip(split.train.head.tolist(), split.train.tail.tolist(), strict=True))
    assert repeats > 0 and len(split.train) - repeats <= len(texts) < len(split.train)
    # every text is a phrasing of a train edge; every phrasing of a held-out edge is caught by ``leaks``
    def phrasings(part: Edges) -> list[str]:
        return [verbalise(names[h], split.relations[r], names[t], v)
                for h, r, t in zip(part.head.tolist(), part.relation.tolist(), part.tail.tolist(), strict=True)
                for v in range(len(PHRASINGS[split.relations[r]]))]

    assert set(texts) <= set(phrasings(split.train))
    held_texts = phrasings(split.held_out)
    assert len(leaks(held_texts, split, names)) == len(held_texts)


def test_training_texts_reject_a_split_of_another_build(kg, split):
    with pytest.raises(EdgeSplitMismatchError, match="another-build"):
        next(training_texts(kg, dataclasses.replace(split, build_id="another-build")))


def test_link_train_drops_every_pair_that_has_a_held_out_edge(split):
    link = split.link_train()
    n = len(split.entities)
    held = set(split.held_out.pair_keys(n).tolist())
    assert not held & set(link.pair_keys(n).tolist())
    # only those pairs are dropped
    train_keys = split.train.pair_keys(n)
    assert len(link) == int((~np.isin(train_keys, list(held))).sum())
    assert set(link.triple_id.tolist()) <= set(split.train.triple_id.tolist())
