"""Tune reciprocal rank fusion (rrf_k, candidate depth, signal weights, KG boost) on the *dev* questions
(``eval/retrieval_medquad500_dev.jsonl``: 500 other MedQuAD questions, disjoint from the eval set), so
the figures ``medkg eval retrieval`` reports on the eval set are not tuned on it.

    .venv/bin/python benchmarks/fusion_tune.py [--questions eval/retrieval_medquad500_dev.jsonl]

Each signal's ranking is computed once per question (depth 200); fusion is then replayed offline with
exactly the formula of ``LiteratureIndex.search``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from assistant.embedding import MiniLMEmbedder
from assistant.literature import DEFAULT_DATA_DIR, LiteratureIndex
from assistant.retrieval_eval import link_focus, read_eval_set
from kg.store import DEFAULT_DATA_DIR as KG_DATA_DIR
from kg.store import KnowledgeGraph

DEV_SET = Path(__file__).resolve().parent.parent / "eval" / "retrieval_medquad500_dev.jsonl"


def metrics(rankings: list[list[int]], answers: list[set[int]]) -> tuple[float, float]:
    """(Recall@5, MRR@10) of rankings of chunk rows against each question's answer rows."""
    recall = mrr = 0.0
    for ranking, answer in zip(rankings, answers, strict=True):
        rank = next((r for r, row in enumerate(ranking[:10], 1) if row in answer), None)
        recall += rank is not None and rank <= 5
        mrr += 1 / rank if rank else 0.0
    return recall / len(answers), mrr / len(answers)


def fuse(dense: list[int], sparse: list[int], rrf_k: int, depth: int, w_dense: float, w_sparse: float,
         mentions: set[int], boost: float) -> list[int]:
    scores: dict[int, float] = {}
    for ranking, weight in ((dense[:depth], w_dense), (sparse[:depth], w_sparse)):
        for rank, row in enumerate(ranking, 1):
            scores[row] = scores.get(row, 0.0) + weight / (rrf_k + rank)
    for row in scores:
        if row in mentions:
            scores[row] += boost / (rrf_k + 1)
    return sorted(scores, key=lambda row: (-scores[row], row))[:10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=DEV_SET)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    questions = read_eval_set(args.questions)
    with KnowledgeGraph.open(KG_DATA_DIR) as kg:
        links = link_focus(kg, questions)
        index = LiteratureIndex.open(MiniLMEmbedder(threads=2), args.data_dir, kg)
        rows_of: dict[str, set[int]] = {}
        for row, chunk in enumerate(index.chunks):
            rows_of.setdefault(chunk.id.rsplit("#", 1)[0], set()).add(row)
        answers = [rows_of[q.passage_id] for q in questions]
        dense = [index.dense_ranking(q.question, 200) for q in questions]
        sparse = [index.sparse_ranking(q.question, 200) for q in questions]
        mentions = [{row for row in set(d) | set(s) if index.mentions(row, links[q.passage_id])}
                    for q, d, s in zip(questions, dense, sparse, strict=True)]
    print(f"{len(questions)} dev questions; focus linked for {sum(1 for v in links.values() if v)}")
    print(f"bm25 alone   R@5 {metrics(sparse, answers)[0]:.3f}  MRR@10 {metrics(sparse, answers)[1]:.3f}")
    print(f"dense alone  R@5 {metrics(dense, answers)[0]:.3f}  MRR@10 {metrics(dense, answers)[1]:.3f}")
    print(f"{'rrf_k':>5} {'depth':>5} {'w_dense':>7} {'w_bm25':>6} {'boost':>5} {'R@5':>6} {'MRR@10':>7}")
    grid = itertools.product((2, 5, 10, 30, 60, 100), (20, 50, 100, 200), (1.0, 1.5, 2.0, 2.5, 3.0, 4.0), (1.0,),
                             (0.0, 0.5, 1.0, 2.0))
    rows = []
    for rrf_k, depth, w_dense, w_sparse, boost in grid:
        fused = [fuse(d, s, rrf_k, depth, w_dense, w_sparse, m, boost)
                 for d, s, m in zip(dense, sparse, mentions, strict=True)]
        rows.append((rrf_k, depth, w_dense, w_sparse, boost, *metrics(fused, answers)))
    for row in sorted(rows, key=lambda r: -r[6])[:15] + [r for r in rows if r[:5] == (60, 100, 1.0, 1.0, 0.0)]:
        print(f"{row[0]:>5} {row[1]:>5} {row[2]:>7} {row[3]:>6} {row[4]:>5} {row[5]:>6.3f} {row[6]:>7.3f}")
    for boost in (0.0, 0.5, 1.0, 2.0):
        best = max((r for r in rows if r[4] == boost), key=lambda r: r[6])
        print(f"best with boost {boost}: rrf_k {best[0]} depth {best[1]} w_dense {best[2]}: "
              f"R@5 {best[5]:.3f} MRR@10 {best[6]:.3f}")


if __name__ == "__main__":
    main()
