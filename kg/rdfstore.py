"""Opening the on-disk Oxigraph store as an rdflib ``Graph`` (default graph, read-only by default).

A read-only store can be opened by several processes at once (the chat app, the CLI, a benchmark).
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph
from oxrdflib.store import OxigraphStore
from rdflib import Graph
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID


def open_graph(path: Path, read_only: bool = True) -> Graph:
    store = pyoxigraph.Store.read_only(str(path)) if read_only else pyoxigraph.Store(str(path))
    return Graph(store=OxigraphStore(store=store), identifier=DATASET_DEFAULT_GRAPH_ID)
