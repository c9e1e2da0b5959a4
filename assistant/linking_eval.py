"""Evaluation of entity linking: the NCBI disease corpus, the lay-language set, and speed.

NCBI disease corpus (PubTator): gold concepts are MeSH (``D003924``, ``C537207``) or OMIM (``OMIM:125853``)
ids, several joined by ``|`` (alternatives) or ``+`` (a composite mention naming several diseases). A gold
mention's DOIDs are the DO diseases whose xrefs contain any of its concepts; mentions with no DOID are left
out of every figure (they are reported as a count).

* **accuracy@1**: ``Linker.link_phrase(gold text, restricted to diseases)``; correct when the id is one of
  the gold mention's DOIDs.
* **detection + linking P/R/F1** (overlap criterion): each document (title + space + abstract) is linked
  with diseases only. A gold mention is found (TP) when a predicted mention overlaps its span by at least
  one character and has one of its DOIDs; each prediction can match one gold mention. A prediction that
  overlaps only gold mentions without a DOID is ignored; every other unmatched prediction is a FP; every
  unmatched gold mention with a DOID is a FN. The exact-span variant (same start and end) is reported too.
"""

from __future__ import annotations

import csv
import gzip
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.linking import Linker
from assistant.linking_dictionary import RESOURCES, read_resource
from assistant.linking_text import name_key
from kg.store import KnowledgeGraph
from kg.vocab import EntityType

REPO = Path(__file__).resolve().parent.parent
NCBI_DEV = REPO / "bundle" / "linking" / "NCBIdevelopset_corpus.txt.gz"
LAY_SET = REPO / "eval" / "lay_linking.tsv"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


@dataclass(frozen=True)
class GoldMention:
    start: int
    end: int
    text: str
    concepts: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    pmid: str
    text: str
    mentions: tuple[GoldMention, ...]


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int
    skipped: int = 0  # gold items left out (no DOID)

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class PRF:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class LayResult:
    accuracy: Accuracy
    by_resource: int  # phrases whose correct top mention came from resources/lay_synonyms.tsv
    held_out: Accuracy  # only the phrases that appear in no curated resource: the honest figure
    failures: tuple[tuple[str, str], ...]  # (phrase, predicted id or "-")


@dataclass(frozen=True)
class Speed:
    n: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    embedder_calls: int


def read_pubtator(path: Path) -> list[Document]:
    """Documents of a PubTator file (plain or .gz): ``pmid|t|title``, ``pmid|a|abstract``, mention rows."""
    opener = gzip.open if str(path).endswith(".gz") else open
    documents, title, abstract, mentions, pmid = [], "", "", [], None
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in [*handle, "\n"]:
            line = line.rstrip("\n")
            if not line.strip():
                if pmid is not None:
                    documents.append(Document(pmid, f"{title} {abstract}", tuple(mentions)))
                title, abstract, mentions, pmid = "", "", [], None
            elif "|t|" in line[:20]:
                pmid, title = line.split("|t|", 1)
            elif "|a|" in line[:20]:
                abstract = line.split("|a|", 1)[1]
            else:
                _, start, end, text, _, concept = line.split("\t")[:6]
                concepts = tuple(c.strip() for c in re.split(r"[|+]", concept) if c.strip())
                mentions.append(GoldMention(int(start), int(end), text, concepts))
    return documents


def concept_doids(kg: KnowledgeGraph) -> dict[str, set[str]]:
    """``MESH:D003924`` / ``OMIM:125853`` -> DOIDs whose xrefs name it."""
    mapping: dict[str, set[str]] = {}
    for entry in kg.names():
        if entry.kind == "name" and entry.entity_type is EntityType.DISEASE:
            for xref in kg.entity(entry.entity_id).xrefs:
                if xref.startswith(("MESH:", "OMIM:")):
                    mapping.setdefault(xref, set()).add(entry.entity_id)
    return mapping


def gold_doids(mention: GoldMention, mapping: dict[str, set[str]]) -> set[str]:
    out: set[str] = set()
    for concept in mention.concepts:
        out |= mapping.get(concept if concept.startswith("OMIM:") else f"MESH:{concept}", set())
    return out


def accuracy_at_1(linker: Linker, documents: Iterable[Document], mapping: dict[str, set[str]],
                  with_document: bool = False) -> Accuracy:
    """``with_document``: the document is linked first; its short-form definitions ("long form (SF)") and
    linked disease ids are passed to ``link_phrase`` as context (the gold text is still linked alone)."""
    correct = total = skipped = 0
    for doc in documents:
        abbreviations, context = {}, ()
        if with_document:
            result = linker.link(doc.text, [EntityType.DISEASE], restrict=True)
            abbreviations, context = dict(result.abbreviations), [m.entity_id for m in result.mentions]
        for gold in doc.mentions:
            doids = gold_doids(gold, mapping)
            if not doids:
                skipped += 1
                continue
            total += 1
            found = linker.link_phrase(gold.text, [EntityType.DISEASE], context, restrict=True,
                                       abbreviations=abbreviations)
            correct += found is not None and found.entity_id in doids
    return Accuracy(correct, total, skipped)


def detection_prf(linker: Linker, documents: Iterable[Document], mapping: dict[str, set[str]],
                  exact: bool = False) -> PRF:
    tp = fp = fn = 0
    for doc in documents:
        golds = [(g, gold_doids(g, mapping)) for g in doc.mentions]
        predicted = linker.link(doc.text, [EntityType.DISEASE], restrict=True).mentions
        matched: set[int] = set()
        for m in predicted:
            hits = [i for i, (g, _) in enumerate(golds)
                    if ((g.start, g.end) == (m.start, m.end) if exact else g.start < m.end and m.start < g.end)]
            good = [i for i in hits if i not in matched and m.entity_id in golds[i][1]]
            if good:
                matched.add(good[0])
                tp += 1
            elif hits and all(not golds[i][1] for i in hits):
                continue  # overlaps only gold mentions that have no DOID: not scored
            else:
                fp += 1
        fn += sum(1 for i, (_, doids) in enumerate(golds) if doids and i not in matched)
    return PRF(tp, fp, fn)


def read_lay_set(path: Path = LAY_SET) -> list[tuple[str, frozenset[str], str]]:
    """(phrase, acceptable ids, expected type) rows of the lay-language set."""
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return [(r["phrase"], frozenset(r["expected_ids"].split(";")), r["expected_type"])
            for r in csv.DictReader(lines, delimiter="\t")]


def resource_phrases(resources: Path = RESOURCES) -> set[str]:
    """Normalised phrases of the curated resources (lay synonyms, abbreviations)."""
    return {name_key(r["phrase"]) for file in ("lay_synonyms.tsv", "abbreviations.tsv")
            for r in read_resource(resources / file, ("phrase", "entity_id"))}


def lay_accuracy(linker: Linker, rows: list[tuple[str, frozenset[str], str]]) -> LayResult:
    """Top mention of ``link(phrase)`` (no expected type given: the linker must infer it).

    ``held_out`` scores only the phrases that no curated resource lists verbatim: an eval phrase that
    is also a resource entry measures the resource, not the linker.
    """
    in_resources = resource_phrases()
    correct = by_resource = held_correct = held_total = 0
    failures = []
    for phrase, ids, _ in rows:
        mentions = linker.link(phrase).mentions
        top = mentions[0] if mentions else None
        hit = top is not None and top.entity_id in ids
        held = name_key(phrase) not in in_resources
        held_total += held
        held_correct += held and hit
        if hit:
            correct += 1
            by_resource += top.method == "curated"
        else:
            failures.append((phrase, top.entity_id if top else "-"))
    return LayResult(Accuracy(correct, len(rows)), by_resource, Accuracy(held_correct, held_total),
                     tuple(failures))


def sentences(documents: Iterable[Document]) -> list[str]:
    return [s for doc in documents for s in _SENTENCE.split(doc.text) if s.strip()]


def speed(linker: Linker, texts: list[str], warmup: int = 20) -> Speed:
    """Wall time of ``link`` per text (after ``warmup`` calls), and how many texts called the embedder."""
    for text in texts[:warmup]:
        linker.link(text)
    times, calls = [], 0
    for text in texts:
        started = time.perf_counter()
        result = linker.link(text)
        times.append((time.perf_counter() - started) * 1000)
        calls += result.used_embedding
    values = np.asarray(times)
    return Speed(len(values), float(np.percentile(values, 50)), float(np.percentile(values, 95)),
                 float(values.max()), calls)
