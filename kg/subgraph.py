"""Ranked, pruned subgraphs and paths for the answer pipeline.

``neighbourhood`` ranks every triple touching the seeds by one total, deterministic key:
asked relation first, then hop distance, then evidence strength (curation tier + frequency, see
``kg.build.evidence_score``), then specificity (a neighbour with fewer edges says more about the
seed), then triple id.

Where to rank is a measured choice. Ranking inside Oxigraph with SPARQL (``ORDER BY … LIMIT``)
costs about 0.15 ms per edge of the seed (73 ms for a 580-edge hub), so a local KG ranks with the
build's adjacency arrays (microseconds), and reads labels and provenance for the ``budget`` winners
through rdflib's pattern API. A KG behind a remote SPARQL endpoint has no adjacency arrays: it runs
the same ranking as one SPARQL query per seed (``_RANKED_EDGES``), with the seed bound through
``initBindings``; the integration test checks that both give the same subgraph.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

import numpy as np

from kg.errors import KGError
from kg.store import KnowledgeGraph
from kg.types import Path, Subgraph
from kg.vocab import SPARQL_PREFIXES, TRIPLE_NS, Relation, entity_curie, entity_uri

#: the remote ranking query: ``?e`` is bound to the seed, ``?p`` to an asked relation (or left free);
#: both are projected because Oxigraph only substitutes projected variables
_RANKED_EDGES = """
SELECT ?e ?p ?st ?other ?score ?degree WHERE {{
  {{ ?st rdf:subject ?e ; rdf:object ?other }} UNION {{ ?st rdf:object ?e ; rdf:subject ?other }}
  ?st rdf:predicate ?p ; medkg:evidenceScore ?score .
  ?other medkg:degree ?degree .
}} ORDER BY DESC(?score) ?degree ?st LIMIT {limit:d}
"""
#: relations a path may use by default: side-effect edges join unrelated drugs through common
#: complaints (nausea, headache), which says nothing about a case
PATH_RELATIONS = tuple(r for r in Relation if r is not Relation.CAUSES_SIDE_EFFECT)
MAX_EXPANDED = 10  # first-hop neighbours expanded for a 2-hop neighbourhood
_RELATIONS = list(Relation)

#: (triple id, neighbour id, score, neighbour degree)
Ranked = tuple[str, str, float, int]


def _rank_local(kg: KnowledgeGraph, entity_id: str, relation: Relation | None, limit: int) -> list[Ranked]:
    adjacency = kg.adjacency
    node = kg.adjacency_index.get(entity_id)
    if node is None:
        return []
    lo, hi = adjacency.indptr[node], adjacency.indptr[node + 1]
    edges, others = adjacency.edge[lo:hi], adjacency.neighbour[lo:hi]
    if relation is not None:
        keep = adjacency.relation[lo:hi] == _RELATIONS.index(relation)
        edges, others = edges[keep], others[keep]
    scores, degrees, ids = adjacency.score[edges], adjacency.degree[others], adjacency.triple_ids[edges]
    order = np.lexsort((ids, degrees, -scores))[:limit]  # last key sorts first
    return [(str(ids[k]), str(adjacency.ids[others[k]]), float(scores[k]), int(degrees[k])) for k in order]


def _rank_sparql(kg: KnowledgeGraph, entity_id: str, relation: Relation | None, limit: int) -> list[Ranked]:
    bindings = {"e": entity_uri(entity_id)}
    if relation is not None:
        bindings["p"] = relation.uri
    rows = kg.graph.query(_RANKED_EDGES.format(limit=limit), initNs=SPARQL_PREFIXES, initBindings=bindings)
    prefix = len(str(TRIPLE_NS))
    return [(str(row.st)[prefix:], entity_curie(row.other), float(row.score), int(row.degree)) for row in rows]


def ranked_edges(kg: KnowledgeGraph, entity_id: str, relation: Relation | None, limit: int) -> list[Ranked]:
    """The entity's edges of ``relation`` (any when None) as (triple id, neighbour id, evidence score, neighbour
    degree), strongest evidence first, at most ``limit``: the candidates a caller re-ranks by its own relevance
    model before reading the chosen triples (``kg.triple``)."""
    rank = _rank_local if kg.has_adjacency else _rank_sparql
    return rank(kg, entity_id, Relation(relation) if relation is not None else None, limit)


def neighbourhood(kg: KnowledgeGraph, entity_ids: Sequence[str], relations: Iterable[Relation] | None = None,
                  hops: int = 1, budget: int = 30) -> Subgraph:
    """The ranked subgraph around ``entity_ids``: at most ``budget`` triples, asked relations first.

    ``hops=2`` also ranks the edges of the best ``MAX_EXPANDED`` first-hop neighbours, after every
    first-hop triple of the same asked-ness. ``candidates`` counts the triples that were eligible.
    """
    if hops not in (1, 2):
        raise ValueError(f"hops must be 1 or 2, not {hops}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1, not {budget}")
    asked = tuple(dict.fromkeys(Relation(r) for r in (relations or ())))
    seeds = tuple(dict.fromkeys(entity_ids))
    local = kg.has_adjacency
    rank = _rank_local if local else _rank_sparql
    degrees = {seed: kg.degree(seed) if local and seed in kg.adjacency_index else kg.entity(seed).degree
               for seed in seeds}  # kg.entity raises UnknownEntityError (with close matches) for unknown ids
    ranked: dict[str, tuple] = {}  # triple id -> sort key

    def collect(entity_id: str, hop: int) -> list[str]:
        neighbours: list[str] = []
        for relation in (*asked, None):
            for triple_id, other, score, degree in rank(kg, entity_id, relation, budget + len(neighbours)):
                neighbours.append(other)
                key = (relation is None and bool(asked), hop, -score, degree, triple_id)
                ranked[triple_id] = min(key, ranked.get(triple_id, key))
        return list(dict.fromkeys(neighbours))

    candidates = 0
    for seed in seeds:
        collect(seed, 1)
        candidates += degrees[seed]
    if hops == 2:
        expanded: list[str] = []
        for triple_id, _ in sorted(ranked.items(), key=lambda item: item[1]):
            triple = kg.triple(triple_id)
            for curie in (triple.subject, triple.object):
                if curie not in seeds and curie not in expanded:
                    expanded.append(curie)
        for node in expanded[:MAX_EXPANDED]:
            collect(node, 2)
            candidates += kg.degree(node) if local else kg.entity(node).degree
    chosen = heapq.nsmallest(budget, ranked.items(), key=lambda item: item[1])
    triples = tuple(kg.triple(triple_id) for triple_id, _ in chosen)
    names = {}
    for triple in triples:
        names[triple.subject], names[triple.object] = triple.subject_name, triple.object_name
    for seed in seeds:
        names.setdefault(seed, kg.name(seed))
    return Subgraph(seeds=seeds, triples=triples, budget=budget, candidates=max(candidates, len(ranked)),
                    entities=names)


def paths(kg: KnowledgeGraph, start: str, end: str, max_hops: int = 3, limit: int = 10,
          relations: Iterable[Relation] | None = None, max_paths: int = 20_000) -> list[Path]:
    """Ranked paths of up to ``max_hops`` edges (walked in either direction) from ``start`` to ``end``.

    Meet in the middle over the build's adjacency arrays: hop-1 neighbours of both ends are
    intersected (2 hops) or joined by one edge (3 hops). Paths rank by fewer hops, then by
    ``mean evidence score - 0.5 * mean log(1 + degree of intermediates)``: strong edges through
    specific nodes (a gene with 5 links) beat weak ones through hubs. At most ``max_paths`` are
    scored; the ``limit`` best are returned with full triples.
    """
    if not 1 <= max_hops <= 3:
        raise ValueError(f"max_hops must be between 1 and 3, not {max_hops}")
    if not kg.has_adjacency:
        raise KGError("paths needs the adjacency arrays of a locally built KG (`medkg kg build`); "
                      "a remote endpoint serves neighbourhood() and SPARQL only")
    adjacency, index = kg.adjacency, kg.adjacency_index
    for entity_id in (start, end):
        if entity_id not in index:
            kg.entity(entity_id)  # unknown: raises with close matches
            return []  # known but isolated
    if start == end:
        raise ValueError("start and end are the same entity")
    allowed = np.zeros(len(Relation), dtype=bool)
    allowed[[list(Relation).index(Relation(r)) for r in (relations or PATH_RELATIONS)]] = True
    a, b = index[start], index[end]
    nodes_a, edges_a = adjacency.neighbours(a, allowed)
    nodes_b, edges_b = adjacency.neighbours(b, allowed)
    found: list[tuple[tuple[int, ...], tuple[int, ...]]] = []  # (nodes, edges)
    found += [((a, b), (int(e),)) for n, e in zip(nodes_a, edges_a, strict=True) if n == b]
    if max_hops >= 2:
        via_b = {}
        for n, e in zip(nodes_b.tolist(), edges_b.tolist(), strict=True):
            via_b.setdefault(n, []).append(e)
        for n, e in zip(nodes_a.tolist(), edges_a.tolist(), strict=True):
            for e2 in via_b.get(n, ()):
                if n not in (a, b):
                    found.append(((a, n, b), (e, e2)))
        if max_hops == 3:
            # expand the side whose neighbours have fewer edges in total
            near, far, flip = (nodes_a, edges_a, via_b), (a, b), False
            if adjacency.degree[nodes_a].sum() > adjacency.degree[nodes_b].sum():
                via_a = {}
                for n, e in zip(nodes_a.tolist(), edges_a.tolist(), strict=True):
                    via_a.setdefault(n, []).append(e)
                near, far, flip = (nodes_b, edges_b, via_a), (b, a), True
            first_nodes, first_edges, via_other = near
            origin, target = far
            for m1, e1 in zip(first_nodes.tolist(), first_edges.tolist(), strict=True):
                if m1 in (a, b) or len(found) >= max_paths:
                    continue
                second_nodes, second_edges = adjacency.neighbours(m1, allowed)
                for m2, e2 in zip(second_nodes.tolist(), second_edges.tolist(), strict=True):
                    if m2 in (a, b, m1):
                        continue
                    for e3 in via_other.get(m2, ()):
                        chain_nodes, chain_edges = (origin, m1, m2, target), (e1, e2, e3)
                        if flip:
                            chain_nodes, chain_edges = chain_nodes[::-1], chain_edges[::-1]
                        found.append((chain_nodes, chain_edges))
    scored = sorted(((len(edges), -_path_score(adjacency, nodes, edges), adjacency.triple_ids[list(edges)].tolist(),
                      nodes, edges) for nodes, edges in found[:max_paths]))
    result = []
    for _, negative_score, _, nodes, edges in scored[:limit]:
        triples = tuple(kg.triple(str(adjacency.triple_ids[e])) for e in edges)
        result.append(Path(start=start, end=end, nodes=tuple(str(adjacency.ids[n]) for n in nodes),
                           triples=triples, score=round(-negative_score, 4)))
    return result


def _path_score(adjacency, nodes: tuple[int, ...], edges: tuple[int, ...]) -> float:
    strength = float(np.mean(adjacency.score[list(edges)]))
    inner = nodes[1:-1]
    hubness = float(np.mean(np.log1p(adjacency.degree[list(inner)]))) if inner else 0.0
    return strength - 0.5 * hubness
