"""``medkg eval retrieval``: Recall@5 and MRR@10 of the literature index on MedQuAD questions, and the
latency of a whole query.

The eval set (``eval/retrieval_medquad500.jsonl``, committed) holds 500 MedQuAD questions drawn with a
fixed seed from the 16,407 that have an answer; each answer is the passage
``medquad:<source site>:<qid>`` of the corpus (every answered question maps to one). Only the answer
text is indexed, never the question. A question counts as found at rank r when the r-th chunk returned
is a chunk of its answer passage.

For the KG boost the question's entities are linked simply: the MedQuAD ``focus`` field (e.g.
"Adult Acute Lymphoblastic Leukemia") looked up case-insensitively among the KG's names and synonyms.
"""

from __future__ import annotations

import gzip
import json
import random
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant import corpus
from assistant.literature import LiteratureIndex
from kg.store import KnowledgeGraph

DEFAULT_EVAL_SET = corpus.REPO_ROOT / "eval" / "retrieval_medquad500.jsonl"


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    focus: str
    qtype: str
    passage_id: str  # the answer passage (unique per question); a hit is any chunk "<passage_id>#<n>"


@dataclass(frozen=True)
class Variant:
    name: str
    dense: bool = True
    sparse: bool = True
    kg_boost: bool = False


VARIANTS = (Variant("bm25", dense=False), Variant("dense", sparse=False), Variant("fused"),
            Variant("fused+kg", kg_boost=True))


@dataclass(frozen=True)
class VariantResult:
    name: str
    questions: int
    recall_at_5: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float


def make_eval_set(qa_path: Path, passages_path: Path, n: int = 500, seed: int = 0,
                  exclude: frozenset[str] = frozenset()) -> list[EvalQuestion]:
    """``n`` answered MedQuAD questions whose answer passage is in the corpus, drawn with ``seed``."""
    passage_ids = {row["id"] for row in corpus.read_passages(passages_path)}
    with gzip.open(qa_path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    candidates = [EvalQuestion(r["qid"], r["question"], r.get("focus") or "", r.get("qtype") or "",
                               f"medquad:{r['source']}:{r['qid']}") for r in rows if r.get("answer")]
    candidates = [q for q in candidates if q.passage_id in passage_ids and q.passage_id not in exclude]
    return sorted(random.Random(seed).sample(candidates, n), key=lambda q: q.passage_id)


def write_eval_set(path: Path, questions: list[EvalQuestion]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(q), ensure_ascii=False, sort_keys=True) + "\n" for q in questions))


def read_eval_set(path: Path = DEFAULT_EVAL_SET) -> list[EvalQuestion]:
    return [EvalQuestion(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]


def link_focus(kg: KnowledgeGraph, questions: list[EvalQuestion]) -> dict[str, tuple[str, ...]]:
    """answer passage id -> entity ids whose name or synonym equals the question's focus (case-insensitive)."""
    by_name: dict[str, set[str]] = {}
    for entry in kg.names():
        by_name.setdefault(entry.name.lower(), set()).add(entry.entity_id)
    return {q.passage_id: tuple(sorted(by_name.get(q.focus.strip().lower(), ()))) for q in questions}


def answer_rank(passages: list, passage_id: str) -> int | None:
    """1-based rank of the first chunk of ``passage_id``, or None."""
    for rank, passage in enumerate(passages, 1):
        if passage.id.rsplit("#", 1)[0] == passage_id:
            return rank
    return None


def evaluate(index: LiteratureIndex, questions: list[EvalQuestion], links: dict[str, tuple[str, ...]],
             variants: tuple[Variant, ...] = VARIANTS) -> list[VariantResult]:
    """One row per variant: Recall@5, MRR@10 and the p50/p95 latency of a whole search call (ms)."""
    results = []
    for variant in variants:
        ranks, times = [], []
        for q in questions:
            started = time.perf_counter()
            found = index.search(q.question, k=10, dense=variant.dense, sparse=variant.sparse,
                                 entity_ids=links.get(q.passage_id, ()) if variant.kg_boost else ())
            times.append(1000 * (time.perf_counter() - started))
            ranks.append(answer_rank(found, q.passage_id))
        results.append(VariantResult(
            variant.name, len(questions), sum(1 for r in ranks if r is not None and r <= 5) / len(questions),
            sum(1 / r for r in ranks if r is not None) / len(questions),
            statistics.median(times), _percentile(times, 95)))
    return results


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_table(results: list[VariantResult]) -> str:
    lines = [f"{'signal':<10} {'questions':>9} {'Recall@5':>9} {'MRR@10':>8} {'p50 ms':>8} {'p95 ms':>8}"]
    lines += [f"{r.name:<10} {r.questions:>9} {r.recall_at_5:>9.3f} {r.mrr_at_10:>8.3f} {r.p50_ms:>8.1f} "
              f"{r.p95_ms:>8.1f}" for r in results]
    return "\n".join(lines)
