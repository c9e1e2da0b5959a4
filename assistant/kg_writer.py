"""The KG-worded answer: a generator backend that writes the ranked facts as plain sentences, no model.

The evidence block is already in the order that matters to the asker (``assistant.relevance``); this backend
states its first facts in the KG's own words, grouped the way a person lists them ("Colchicine [T1], naproxen
[T2] and indomethacin [T3] are used to treat gout."), each item followed by its marker. It cannot name what the
evidence does not hold, nor put a marker on the wrong fact, so it is the measured alternative to the small
model (``medkg eval answers --generator kg``): faithful by construction, at the cost of the model's wording of
passages and of answers to questions that are not lists. It implements the ``Generator`` protocol
(``assistant.generation``) and reads only the prompt it is given, like any other backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from assistant.evidence import PLAIN
from assistant.generation import DEFAULT_N_CTX, EVIDENCE_LINE, GenerationConfig, check_messages
from kg.vocab import Relation

#: how many facts of one group a sentence lists, and how many sentences an answer has
PER_SENTENCE = 3
SENTENCES = 2
NO_EVIDENCE = "The sources I was given hold nothing on this."

_LABELS = {relation.label: relation for relation in Relation}
_TRIPLE = re.compile(r"^(?P<s>.+?) — (?P<r>[^—]+?) — (?P<o>.+?) \((?P<extra>[^()]*)\)(?: — [\w -]+)?$")

#: relation -> the sentence for one subject and several objects (the patient listing's plain sentence, but a
#: disease's findings and genes are listed after it), and for several subjects and one object
_ONE_SUBJECT = {**PLAIN, Relation.HAS_SYMPTOM: "Signs of {s} include {o}",
                Relation.HAS_PHENOTYPE: "Signs of {s} include {o}",
                Relation.ASSOCIATED_WITH_GENE: "Genes linked to {s} include {o}"}
_ONE_OBJECT = {Relation.TREATS: "{s} are used to treat {o}", Relation.PALLIATES: "{s} can ease {o}",
               Relation.INDICATED_FOR: "{s} are used for {o}", Relation.CAUSES_SIDE_EFFECT: "{s} can cause {o}",
               Relation.HAS_SYMPTOM: "{o} can be a sign of {s}", Relation.HAS_PHENOTYPE: "{o} can be a sign of {s}",
               Relation.ASSOCIATED_WITH_GENE: "{s} are linked to the gene {o}", Relation.BINDS_GENE: "{s} act on {o}",
               Relation.RESEMBLES: "{s} are similar to {o}", Relation.IN_CLASS: "{s} are kinds of {o}",
               Relation.LOCATED_IN: "{s} affect the {o}", Relation.SUBCLASS_OF: "{s} are kinds of {o}"}


def _word(name: str) -> str:
    """A name inside a sentence: "Nausea" -> "nausea", "Serotonin Reuptake Inhibitor" -> "serotonin reuptake
    inhibitor", but "NOD2", "HbA1c", "Crohn's disease" and "Parkinson disease" keep their capitals."""
    words = name.split()
    if any(w.isupper() or w[1:] != w[1:].lower() or any(ch.isdigit() for ch in w) for w in words):
        return name  # an acronym or a gene symbol in it
    if words and words[0].endswith(("'s", "s'")) or len(words) > 1 and not any(w[:1].isupper() for w in words[1:]) \
            and words[0][:1].isupper() and words[0].lower() in _EPONYM_HINT:
        return name
    return name.lower()


#: first words that are people's names in disease names without an apostrophe ("Parkinson disease")
_EPONYM_HINT = frozenset({"parkinson", "alzheimer", "huntington", "crohn", "hodgkin", "addison", "cushing",
                          "graves", "hashimoto", "kawasaki", "raynaud", "sjogren", "wilson", "tourette", "down"})


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _facts(prompt: str) -> tuple[list[tuple[str, str, Relation, str]], list[tuple[str, str]]]:
    """(marker, subject, relation, object) of the prompt's triple lines, in order, and its passage lines."""
    triples, passages = [], []
    for marker, text in EVIDENCE_LINE.findall(prompt):
        if marker.startswith("P"):
            passages.append((marker, text))
            continue
        found = _TRIPLE.match(text)
        relation = _LABELS.get(found.group("r").strip()) if found else None
        if relation is not None:
            triples.append((marker, found.group("s").strip(), relation, found.group("o").strip()))
    return triples, passages


def write(prompt: str) -> str:
    """The answer to the prompt's question from its evidence lines (see the module docstring)."""
    triples, passages = _facts(prompt)
    sentences, used = [], set()
    for marker, subject, relation, obj in triples:
        if len(sentences) == SENTENCES:
            break
        if marker in used:
            continue
        same_subject = [t for t in triples if t[0] not in used and t[2] is relation and t[1] == subject]
        same_object = [t for t in triples if t[0] not in used and t[2] is relation and t[3] == obj]
        if len(same_object) > len(same_subject):
            group = same_object[:PER_SENTENCE]
            items = [f"{_word(s) if i else s} [{m}]" for i, (m, s, _, _) in enumerate(group)]
            text = _ONE_OBJECT[relation].format(s=_listed(items), o=_word(obj)) if len(group) > 1 else \
                _ONE_SUBJECT[relation].format(s=subject, o=f"{_word(obj)} [{marker}]")
        else:
            group = same_subject[:PER_SENTENCE]
            items = [f"{_word(o)} [{m}]" for m, _, _, o in group]
            text = _ONE_SUBJECT[relation].format(s=subject, o=_listed(items))
        used.update(m for m, *_ in group)
        sentences.append(text[0].upper() + text[1:] + ".")
    if not sentences and passages:
        marker, text = passages[0]
        body = text.split(" — ", 1)[-1]
        first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0].rstrip(" …")
        sentences.append(f"{first.rstrip('.')} [{marker}].")
    return " ".join(sentences) or NO_EVIDENCE


class KGWriter:
    """A ``Generator`` that writes ``write(prompt)``; a word is a token."""

    name = "kg"

    def __init__(self, context_window: int = DEFAULT_N_CTX) -> None:
        self.context_window = context_window

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def answer(self, messages: list[dict[str, str]]) -> str:
        return write(next((m["content"] for m in reversed(messages) if m["role"] == "user"), ""))

    def stream(self, messages: list[dict[str, str]], config: GenerationConfig) -> Iterator[str]:
        check_messages(messages)
        yield self.answer(messages)

    def generate(self, messages: list[dict[str, str]], config: GenerationConfig) -> str:
        return "".join(self.stream(messages, config))
