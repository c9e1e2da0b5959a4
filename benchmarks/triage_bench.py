"""Triage speed: per-message time of the rules alone (the baseline, measured in the same run), the rules with the
classifier and the language check (``Triager.assess``, with MiniLM traced and, for comparison, eager), and the
findings check after linking, per torch thread count.

    .venv/bin/python benchmarks/triage_bench.py [--limit 1500] [--repeat 3] [--threads 1,2]

Messages: the team-written training messages and the 995 MedQuAD evaluation questions (their texts only; nothing
is printed of them). Each message is timed ``--repeat`` times after one warm-up pass; the table gives p50, p95
and max in milliseconds and each row's p95 as a ratio to the rules' (baseline / row: below 1 means slower).
Also: the word-piece count p50/p95 of the messages. The assistant runs triage on one thread (``open_triager``).
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from assistant.safety.rules import red_flags
from assistant.safety.training import MEDQUAD_EVAL, team_written
from assistant.safety.triage import open_triager


def timed(fn, messages, repeat: int) -> list[float]:
    for message in messages:
        fn(message)
    times = []
    for _ in range(repeat):
        for message in messages:
            start = time.perf_counter()
            fn(message)
            times.append((time.perf_counter() - start) * 1000)
    return times


def row(name: str, times: list[float], baseline_p95: float | None) -> str:
    p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
    ratio = f"{baseline_p95 / p95:8.3f}x" if baseline_p95 else "       -"
    return f"{name:<46} {p50:8.2f} {p95:8.2f} {max(times):8.2f} {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="torch thread counts to time the classifier with")
    args = parser.parse_args()

    texts = [m.text for m in team_written() if m.expected != "non_english"]
    texts += [json.loads(line)["question"] for path in MEDQUAD_EVAL for line in path.open(encoding="utf-8")]
    random.Random(0).shuffle(texts)
    texts = texts[:args.limit]

    from assistant.embedding import MiniLMEmbedder
    from assistant.linking import Linker, LinkerConfig
    from kg.store import KnowledgeGraph

    kg = KnowledgeGraph.open()
    linker = Linker(kg, LinkerConfig())
    embedder = MiniLMEmbedder(threads=1)
    triager = open_triager(embedder, kg, linker)
    tokenizer = embedder.model.tokenizer
    pieces = [len(tokenizer(t)["input_ids"]) for t in texts]

    import torch

    from assistant.safety.classifier import TriageEncoder
    from assistant.safety.triage import Triager

    eager = Triager(triager.messages, triager.classifier,
                    TriageEncoder(triager.classifier.config, embedder, traced=False).encode, triager.findings,
                    triager.language)
    rules = timed(red_flags, texts, args.repeat)
    mentions = {t: linker.link(t).mentions for t in texts}
    rows = []
    for threads in [int(n) for n in args.threads.split(",")]:
        torch.set_num_threads(threads)
        rows.append((f"assess, eager PyTorch ({threads} thread{'s' * (threads > 1)})",
                     timed(eager.assess, texts, args.repeat)))
        rows.append((f"assess: rules + classifier + language ({threads})", timed(triager.assess, texts, args.repeat)))
        rows.append((f"assess + findings, linking not counted ({threads})",
                     timed(lambda t: triager.with_findings(triager.assess(t), t, mentions[t]), texts, args.repeat)))

    base = float(np.percentile(rules, 95))
    print(f"{len(texts)} messages x {args.repeat}; word pieces p50 {np.percentile(pieces, 50):.0f}, "
          f"p95 {np.percentile(pieces, 95):.0f}, max {max(pieces)}; classifier reads {triager.classifier.config.layers}"
          f" MiniLM layers (traced unless marked eager); torch threads in brackets")
    print(f"{'ms per message':<46} {'p50':>8} {'p95':>8} {'max':>8} {'ratio':>9}")
    print(row("rules alone (baseline)", rules, None))
    for name, times in rows:
        print(row(name, times, base))
    print("ratio = baseline p95 / row p95")


if __name__ == "__main__":
    main()
