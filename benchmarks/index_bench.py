"""Literature index benchmark: which FAISS index, what int8 costs, how fast a whole query is.

    .venv/bin/python benchmarks/index_bench.py [--float32 vectors.npz] [--queries 500]

1. FAISS variants over the built index's vectors: exact ``IndexFlatIP``, ``IndexHNSWFlat`` and
   ``IndexIVFFlat``: build seconds, recall@10 against exact search, p50/p95 search ms per query.
2. With ``--float32`` (an .npz of ``keys`` and float32 ``vectors``, e.g. from a full encode): recall@10
   of the int8-quantised committed cache against the float32 vectors.
3. The opened index: p50/p95 of a whole ``search`` call (embedding, both searches, fusion) over the
   eval questions, and the RSS it adds to the process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import psutil

from assistant.embedding import MiniLMEmbedder
from assistant.literature import DEFAULT_DATA_DIR, IndexConfig, LiteratureIndex, make_faiss
from assistant.retrieval_eval import DEFAULT_EVAL_SET, read_eval_set


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]))


def timed_search(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list[float]]:
    rows, times = [], []
    for q in queries:
        started = time.perf_counter()
        _, found = index.search(q[None, :], k)
        times.append(1000 * (time.perf_counter() - started))
        rows.append(found[0])
    return np.array(rows), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--float32", type=Path, help="npz with keys and float32 vectors of the same chunks")
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    faiss.omp_set_num_threads(2)
    process = psutil.Process()
    embedder = MiniLMEmbedder(threads=2)
    questions = read_eval_set(DEFAULT_EVAL_SET)[:args.queries]
    query_vectors = embedder.encode([q.question for q in questions])
    rss_before = process.memory_info().rss
    index = LiteratureIndex.open(embedder, args.data_dir)
    rss_index = process.memory_info().rss - rss_before
    vectors = index.dense.reconstruct_n(0, index.dense.ntotal)
    print(f"{len(vectors):,} chunk vectors, {len(questions)} query vectors (eval questions)")

    print(f"\n{'index':<28} {'build s':>8} {'recall@10':>10} {'p50 ms':>8} {'p95 ms':>8}")
    exact = None
    for index_type, settings in (("flat", [None]), ("hnsw", [32, 64, 128]), ("ivf", [8, 16, 32])):
        started = time.perf_counter()
        candidate = make_faiss(vectors, IndexConfig(index_type=index_type))  # built once, searched per setting
        build_s = time.perf_counter() - started
        for setting in settings:
            if index_type == "hnsw":
                candidate.hnsw.efSearch = setting
            elif index_type == "ivf":
                candidate.nprobe = setting
            found, times = timed_search(candidate, query_vectors)
            exact = found if exact is None else exact
            name = {"flat": "flat (exact IP)", "hnsw": f"hnsw M=32 efSearch={setting}",
                    "ivf": f"ivf nlist=512 nprobe={setting}"}[index_type]
            print(f"{name:<28} {build_s:>8.2f} {recall_at(found, exact):>10.4f} {statistics.median(times):>8.2f} "
                  f"{percentile(times, 95):>8.2f}")

    if args.float32:
        with np.load(args.float32) as data:
            full = data["vectors"]  # rows in chunk order (the encode that produced the cache)
        exact32, _ = timed_search(make_faiss(full, IndexConfig()), query_vectors)
        int8, _ = timed_search(make_faiss(vectors, IndexConfig()), query_vectors)
        cosine = np.sum(full * vectors, axis=1)
        print(f"\nint8 cache vs float32: recall@10 {recall_at(int8, exact32):.4f}; vector cosine min "
              f"{cosine.min():.5f} mean {cosine.mean():.6f}")

    index.search("warm-up", k=10)
    times = []
    for q in questions:
        started = time.perf_counter()
        index.search(q.question, k=10)
        times.append(1000 * (time.perf_counter() - started))
    print(f"\nwhole fused query over {len(questions)} questions: p50 {statistics.median(times):.1f} ms, "
          f"p95 {percentile(times, 95):.1f} ms; RSS added by opening the index {rss_index / 2**20:.0f} MB, "
          f"process RSS {process.memory_info().rss / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
