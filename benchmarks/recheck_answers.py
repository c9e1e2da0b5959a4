"""Re-check stored answers with today's citation check, without generating again: the raw model text of each
outcome in a ``medkg eval answers --json`` file is fed back through the whole pipeline (same retrieval, same
evidence budget counted with the llama.cpp tokenizer), and the harness's report is printed.

    .venv/bin/python benchmarks/recheck_answers.py runs/answers.json

Latency figures are those of the stored run; the rest is recomputed. Used to tell a change of the check from a
change of the model (README, "Why these figures are lower ...").
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from assistant.answer import Assistant
from assistant.answer_eval import Outcome, default_question_sets, evaluate, format_report, read_question_set
from assistant.generation import GenerationConfig, LlamaCppGenerator, resolve_model
from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph


class StoredText(LlamaCppGenerator):
    """Counts tokens like the real generator (the evidence budget depends on it) and writes ``reply``."""

    reply = ""

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        yield self.reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes", type=Path, help="a JSON file written by `medkg eval answers --json`")
    args = parser.parse_args()
    stored = json.loads(args.outcomes.read_text())["outcomes"]
    generator = StoredText(resolve_model("base"))  # the tokenizer only: base and trained share it
    bot = Assistant.open(generator=generator)
    rows = {row.id: row for row in read_question_set(*default_question_sets())}
    outcomes = []
    for item in stored:
        row = rows[item["row"]["id"]]
        history, generator.reply = [], ""  # earlier turns carry their entities, not their text
        for question in row.history:
            history.append(bot.answer(question, history=tuple(history), audience=row.audience))
        generator.reply = item["answer"]["raw_text"] or ""
        answer = bot.answer(row.question, history=tuple(history), audience=row.audience)
        outcomes.append(Outcome(row, answer, item["seconds"]))
    with KnowledgeGraph.open(DEFAULT_DATA_DIR) as kg:
        print(format_report(evaluate(outcomes, kg)).split("\nlatency")[0])
    flags = Counter(flag.split(":")[0] for outcome in outcomes for flag in outcome.answer.flags)
    print("flags:", dict(flags.most_common()))


if __name__ == "__main__":
    main()
