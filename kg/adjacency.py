"""A compact undirected adjacency of the relation edges (CSR arrays), written by the build.

Path search walks many neighbourhoods; doing that through SPARQL or ``graph.triples`` costs
milliseconds per hub. The adjacency answers "neighbours of node i" with two array slices, and the
store is only asked for the details of the few paths returned.

Arrays (``adjacency.npz``): ``ids`` (n,) entity CURIEs; ``degree`` (n,); ``indptr`` (n+1,);
``neighbour``, ``relation``, ``edge`` (2m,) - for node i, ``neighbour[indptr[i]:indptr[i+1]]`` are its
neighbours, ``relation`` the relation index (order of ``kg.vocab.Relation``), ``edge`` the edge index;
``head``, ``tail``, ``score`` (m,) and ``triple_ids`` (m,) describe each edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kg.vocab import Relation

RELATIONS = list(Relation)


@dataclass(frozen=True)
class Adjacency:
    ids: np.ndarray
    degree: np.ndarray
    indptr: np.ndarray
    neighbour: np.ndarray
    relation: np.ndarray
    edge: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    score: np.ndarray
    triple_ids: np.ndarray

    def index(self) -> dict[str, int]:
        return {entity_id: i for i, entity_id in enumerate(self.ids.tolist())}

    def neighbours(self, node: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour nodes, edge indices) of ``node`` over relations where ``allowed[relation]``."""
        lo, hi = self.indptr[node], self.indptr[node + 1]
        keep = allowed[self.relation[lo:hi]]
        return self.neighbour[lo:hi][keep], self.edge[lo:hi][keep]


def build_adjacency(entity_ids: Iterable[str], edges: Iterable[tuple[str, Relation, str, float, str]]) -> Adjacency:
    ids = np.array(sorted(entity_ids))
    position = {entity_id: i for i, entity_id in enumerate(ids.tolist())}
    heads, tails, relations, scores, triple_ids = [], [], [], [], []
    for subject, relation, obj, score, triple_id in edges:
        heads.append(position[subject])
        tails.append(position[obj])
        relations.append(RELATIONS.index(relation))
        scores.append(score)
        triple_ids.append(triple_id)
    head, tail = np.array(heads, dtype=np.int32), np.array(tails, dtype=np.int32)
    edge_relation = np.array(relations, dtype=np.int8)
    m = len(head)
    source = np.concatenate([head, tail])
    target = np.concatenate([tail, head])
    order = np.argsort(source, kind="stable")
    counts = np.bincount(source, minlength=len(ids))
    return Adjacency(
        ids=ids, degree=counts.astype(np.int32),
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        neighbour=target[order].astype(np.int32),
        relation=np.concatenate([edge_relation, edge_relation])[order],
        edge=np.concatenate([np.arange(m), np.arange(m)])[order].astype(np.int32),
        head=head, tail=tail, score=np.array(scores, dtype=np.float64), triple_ids=np.array(triple_ids),
    )


def save_adjacency(path: Path, adjacency: Adjacency) -> str:
    """Write ``adjacency.npz``; returns its sha256."""
    with open(path, "wb") as handle:
        np.savez(handle, **{name: getattr(adjacency, name) for name in Adjacency.__dataclass_fields__})
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_adjacency(path: Path) -> Adjacency:
    with np.load(path, allow_pickle=False) as arrays:
        return Adjacency(**{name: arrays[name] for name in Adjacency.__dataclass_fields__})
