"""Ranking invariants of neighbourhood(), the SPARQL ranking it must agree with, and paths()."""

from __future__ import annotations

import pytest

from kg.errors import UnknownEntityError
from kg.subgraph import _rank_local, _rank_sparql, neighbourhood, paths
from kg.vocab import Relation

SEEDS = ["DRUGBANK:DB00331", "DOID:9352", "DOID:6364", "DOID:2841", "HP:0000822"]


@pytest.mark.parametrize("budget", [1, 3, 10, 25])
@pytest.mark.parametrize("seed", SEEDS)
def test_budget_is_never_exceeded(kg, seed, budget):
    subgraph = neighbourhood(kg, [seed], budget=budget)
    assert 0 < len(subgraph.triples) <= budget
    assert subgraph.candidates >= len(subgraph.triples)
    assert all(seed in (t.subject, t.object) for t in subgraph.triples)


def test_asked_relations_come_first(kg):
    subgraph = neighbourhood(kg, ["DRUGBANK:DB00331"], [Relation.INDICATED_FOR, Relation.TREATS], budget=10)
    relations = [t.predicate for t in subgraph.triples]
    asked = {Relation.INDICATED_FOR, Relation.TREATS}
    first_other = next(i for i, r in enumerate(relations) if r not in asked)
    assert first_other >= 4  # metformin has 1 treats and 3 indicated_for edges in the fixture
    assert all(r not in asked for r in relations[first_other:])
    assert set(relations[:first_other]) == asked


def test_order_is_by_evidence_then_specificity_and_deterministic(kg):
    first = neighbourhood(kg, ["DRUGBANK:DB00331"], [Relation.CAUSES_SIDE_EFFECT], budget=12)
    second = neighbourhood(kg, ["DRUGBANK:DB00331"], [Relation.CAUSES_SIDE_EFFECT], budget=12)
    assert first == second
    scores = [t.score for t in first.triples]
    assert scores == sorted(scores, reverse=True)
    assert first.triples[0].object_name == "Diarrhoea"  # the most frequent side effect in the fixture


def test_two_hops_add_the_neighbours_edges_after_the_seeds(kg):
    one = neighbourhood(kg, ["DOID:9352"], budget=200)
    two = neighbourhood(kg, ["DOID:9352"], hops=2, budget=200)
    assert set(one.triples) < set(two.triples)
    assert len(two.triples) <= 200
    first_far = next(i for i, t in enumerate(two.triples) if "DOID:9352" not in (t.subject, t.object))
    assert all("DOID:9352" in (t.subject, t.object) for t in two.triples[:first_far])
    assert neighbourhood(kg, ["DOID:9352"], hops=2, budget=5).triples == two.triples[:5]


def test_several_seeds_share_one_ranking(kg):
    subgraph = neighbourhood(kg, ["DRUGBANK:DB00331", "DOID:6364"], [Relation.TREATS, Relation.PALLIATES],
                             budget=8)
    asked = [t.predicate in (Relation.TREATS, Relation.PALLIATES) for t in subgraph.triples]
    assert asked == sorted(asked, reverse=True) and asked[0] and not asked[-1]
    assert {"DRUGBANK:DB00331", "DOID:6364"} <= set(subgraph.entities)
    touched = {seed for t in subgraph.triples for seed in ("DRUGBANK:DB00331", "DOID:6364")
               if seed in (t.subject, t.object)}
    assert touched == {"DRUGBANK:DB00331", "DOID:6364"}


def test_bad_arguments(kg):
    with pytest.raises(UnknownEntityError):
        neighbourhood(kg, ["DOID:0000000"])
    with pytest.raises(ValueError, match="hops"):
        neighbourhood(kg, ["DOID:9352"], hops=3)
    with pytest.raises(ValueError, match="budget"):
        neighbourhood(kg, ["DOID:9352"], budget=0)


@pytest.mark.parametrize("relation", [None, Relation.CAUSES_SIDE_EFFECT, Relation.HAS_PHENOTYPE, Relation.TREATS])
@pytest.mark.parametrize("seed", SEEDS)
def test_local_ranking_equals_the_sparql_ranking(kg, seed, relation):
    """The adjacency arrays and the remote-endpoint SPARQL query must rank identically."""
    assert _rank_local(kg, seed, relation, 15) == _rank_sparql(kg, seed, relation, 15)


def test_paths_rank_direct_evidence_first(kg):
    found = paths(kg, "DRUGBANK:DB00331", "DOID:9352", limit=20)
    assert [p.hops for p in found] == sorted(p.hops for p in found)
    assert found[0].hops == 1 and found[0].triples[0].predicate is Relation.TREATS  # curated beats text-mined
    for path in found:
        assert path.nodes[0] == "DRUGBANK:DB00331" and path.nodes[-1] == "DOID:9352"
        for (a, b), triple in zip(zip(path.nodes, path.nodes[1:], strict=False), path.triples, strict=True):
            assert {a, b} == {triple.subject, triple.object}
        assert all(t.predicate is not Relation.CAUSES_SIDE_EFFECT for t in path.triples)


def test_paths_between_diseases_go_through_shared_genes_or_resemblance(kg):
    found = paths(kg, "DOID:10652", "DOID:14330", max_hops=2)
    assert found
    assert {t.predicate for p in found for t in p.triples} & {Relation.ASSOCIATED_WITH_GENE, Relation.RESEMBLES}


def test_paths_reject_bad_arguments(kg):
    with pytest.raises(ValueError, match="max_hops"):
        paths(kg, "DOID:9352", "DOID:6364", max_hops=4)
    with pytest.raises(UnknownEntityError):
        paths(kg, "DOID:9352", "DOID:0000000")
