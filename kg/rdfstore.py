"""Opening the on-disk Oxigraph store as an rdflib ``Graph`` (default graph, read-only by default).

A read-only store can be opened by several processes at once (the chat app, the CLI, a benchmark).
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph
from oxrdflib.store import OxigraphStore
from rdflib import Graph, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID


def open_graph(path: Path, read_only: bool = True) -> Graph:
    return open_oxigraph(path, read_only)[0]


def open_oxigraph(path: Path, read_only: bool = True) -> tuple[Graph, pyoxigraph.Store]:
    """The rdflib graph and the pyoxigraph store under it (for reads that skip rdflib's term objects)."""
    store = pyoxigraph.Store.read_only(str(path)) if read_only else pyoxigraph.Store(str(path))
    return Graph(store=OxigraphStore(store=store), identifier=DATASET_DEFAULT_GRAPH_ID), store


def describe_oxigraph(store: pyoxigraph.Store, iri: str) -> dict[str, list[str]]:
    """predicate IRI -> values (IRIs and literals' lexical forms) of one node, from one index scan.

    Same content as ``describe_rdflib``; about 3x faster because no rdflib term or context objects
    are built (oxrdflib makes a ``Graph`` per quad), which is most of the cost of a ranked subgraph.
    """
    values: dict[str, list[str]] = {}
    for quad in store.quads_for_pattern(pyoxigraph.NamedNode(iri), None, None, pyoxigraph.DefaultGraph()):
        values.setdefault(quad.predicate.value, []).append(quad.object.value)
    return values


def describe_rdflib(graph: Graph, iri: str) -> dict[str, list[str]]:
    """predicate IRI -> values of one node through rdflib's pattern API (any store: memory, remote)."""
    values: dict[str, list[str]] = {}
    for predicate, obj in graph.predicate_objects(URIRef(iri)):
        values.setdefault(str(predicate), []).append(str(obj))
    return values
