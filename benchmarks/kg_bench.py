"""KG speed: the Oxigraph-backed KG against rdflib's default in-memory store, on the same KG, in one run.

    .venv/bin/python benchmarks/kg_bench.py [--data-dir data/kg] [--entities 1000] [--budget 20] [--build]

Both stores answer through the same code (``kg.subgraph.neighbourhood`` and ``paths``): the ranking
runs on the build's adjacency arrays, and labels and provenance are read from the store. The
baseline KG is the same N-Triples, parsed into ``rdflib.Graph()`` (the Memory store). A third row
shows what a plain rdflib application would do instead: rank with a SPARQL query evaluated by rdflib's
own engine on the Memory store (measured on a subset, it is slow). Each operation is timed over the
same random entities (seeded); RSS is measured in a fresh child process per store.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rdflib import Graph

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kg.build import DEFAULT_DATA_DIR, BuildConfig, build  # noqa: E402
from kg.store import KnowledgeGraph  # noqa: E402
from kg.subgraph import _RANKED_EDGES, neighbourhood, paths  # noqa: E402
from kg.vocab import SPARQL_PREFIXES, entity_uri  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def timed(function, items) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        function(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def rss_of(kind: str, data_dir: Path, ntriples: Path) -> float:
    """Resident set size (MB) of a fresh process that opens the KG with one store and answers one query."""
    code = f"""
import psutil, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from kg.store import KnowledgeGraph
from kg.subgraph import neighbourhood
kg = KnowledgeGraph.open({str(data_dir)!r})
if {kind!r} == "memory":
    from rdflib import Graph
    graph = Graph(); graph.parse({str(ntriples)!r}, format="nt"); kg = KnowledgeGraph(graph, kg.manifest, kg.root)
neighbourhood(kg, ["DOID:9352"], budget=20)
print(psutil.Process().memory_info().rss / 1e6)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=200, help="random (compound, disease) and disease pairs")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--sparql-subset", type=int, default=50, help="entities for the rdflib-SPARQL row")
    parser.add_argument("--build", action="store_true", help="time a full build into a temporary directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: dict[str, dict[str, float | str]] = {"oxigraph": {}, "memory": {}, "memory+sparql": {}}

    if args.build:
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            build(BuildConfig(data_dir=Path(scratch)))
            rows["oxigraph"]["build_s"] = time.perf_counter() - started

    started = time.perf_counter()
    kg = KnowledgeGraph.open(args.data_dir)
    rows["oxigraph"]["open_s"] = time.perf_counter() - started

    rng = random.Random(args.seed)
    entities = rng.sample(kg.adjacency.ids.tolist(), args.entities)
    by_type: dict[str, list[str]] = {}
    for name in kg.names():
        if name.kind == "name":
            by_type.setdefault(name.entity_type.value, []).append(name.entity_id)
    connected = set(kg.adjacency_index)
    compounds = sorted(set(by_type["compound"]) & connected)
    diseases = sorted(set(by_type["disease"]) & connected)
    pairs = [(rng.choice(compounds), rng.choice(diseases)) for _ in range(args.paths // 2)]
    pairs += [tuple(rng.sample(diseases, 2)) for _ in range(args.paths - len(pairs))]

    def measure(name: str, store: KnowledgeGraph) -> None:
        neighbourhood(store, entities[:5], budget=args.budget)  # warm caches the same way for both
        samples = timed(lambda e: neighbourhood(store, [e], budget=args.budget), entities)
        rows[name]["1hop_p50_ms"], rows[name]["1hop_p95_ms"] = percentiles(samples)
        samples = timed(lambda p: paths(store, p[0], p[1], max_hops=3, limit=10), pairs)
        rows[name]["paths_p50_ms"], rows[name]["paths_p95_ms"] = percentiles(samples)

    # ours first: the baseline's millions of Python objects would otherwise slow every GC pass we pay for
    measure("oxigraph", kg)
    with tempfile.TemporaryDirectory() as scratch:
        ntriples = Path(scratch) / "kg.nt"
        kg.export(ntriples, "nt")
        rows["oxigraph"]["rss_mb"] = rss_of("oxigraph", args.data_dir, ntriples)
        rows["memory"]["rss_mb"] = rss_of("memory", args.data_dir, ntriples)
        started = time.perf_counter()
        graph = Graph()
        graph.parse(ntriples, format="nt")
        rows["memory"]["open_s"] = time.perf_counter() - started
    rows["memory+sparql"]["open_s"] = rows["memory"]["open_s"]
    rows["memory+sparql"]["rss_mb"] = rows["memory"]["rss_mb"]
    baseline = KnowledgeGraph(graph, kg.manifest, kg.root)  # same names table and arrays, Memory store
    measure("memory", baseline)

    def sparql_ranked(entity: str) -> None:  # ranking by rdflib's SPARQL engine, then the same detail reads
        ranked = graph.query(_RANKED_EDGES.format(limit=args.budget), initNs=SPARQL_PREFIXES,
                             initBindings={"e": entity_uri(entity)})
        for row in ranked:
            baseline.triple(str(row.st).rsplit("/", 1)[1])

    samples = timed(sparql_ranked, entities[: args.sparql_subset])
    rows["memory+sparql"]["1hop_p50_ms"], rows["memory+sparql"]["1hop_p95_ms"] = percentiles(samples)

    counts = kg.manifest["counts"]
    print(f"KG {kg.manifest['build_id']}: {counts['triples']:,} triples, {counts['edges']:,} edges; "
          f"{args.entities} random entities (seed {args.seed}), budget {args.budget}; {len(pairs)} path pairs; "
          f"rdflib-SPARQL row on {args.sparql_subset} of the entities")
    metrics = ["build_s", "open_s", "rss_mb", "1hop_p50_ms", "1hop_p95_ms", "paths_p50_ms", "paths_p95_ms"]
    print(f"{'metric':<14}{'oxigraph (ours)':>17}{'rdflib memory':>16}{'ratio':>9}{'memory+SPARQL':>16}{'ratio':>9}")
    for metric in metrics:
        ours = rows["oxigraph"].get(metric)
        cells = [f"{metric:<14}", f"{ours:>17.2f}" if ours is not None else f"{'-':>17}"]
        for other in ("memory", "memory+sparql"):
            value = rows[other].get(metric)
            if value is None or ours is None:
                cells += [f"{'-':>16}", f"{'-':>9}"]
            else:
                cells += [f"{value:>16.2f}", f"{value / ours:>8.1f}x"]
        print("".join(cells))
    print("ratio = baseline / ours (above 1: ours is faster or smaller)")
    targets = {"open_s": 3.0, "1hop_p95_ms": 5.0, "paths_p95_ms": 50.0, "rss_mb": 800.0}
    for metric, limit in targets.items():
        value = rows["oxigraph"][metric]
        print(f"target {metric} <= {limit}: {value:.2f} {'met' if value <= limit else 'MISSED'}")
    print(json.dumps({k: {m: round(v, 3) if isinstance(v, float) else v for m, v in r.items()}
                      for k, r in rows.items()}))


if __name__ == "__main__":
    main()
