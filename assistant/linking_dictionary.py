"""The linking dictionary: folded name keys -> KG entries, an Aho-Corasick automaton over them, and the
token vocabulary the fuzzy matcher corrects towards.

Besides every name in ``kg.names()`` it holds derived variants, each marked by its ``kind``:

* eponyms — "von Willebrand disease" -> "von Willebrand"; "Alzheimer's disease" -> "alzheimer(s)" (kind
  ``eponym``: a one-word eponym only matches where the text keeps the s; plain "Alzheimer" is a surname);
* inverted names — "Muscular dystrophy, Duchenne" -> "Duchenne muscular dystrophy";
* numbered stems — "Schwartz-Jampel syndrome 1" -> "Schwartz-Jampel syndrome" (kind ``variant``, only where no
  disease bears the stem as its name); headless stems — "carpal tunnel syndrome" -> "carpal tunnel" (where the
  stem is no KG name and names one disease only);
* ``abbreviation`` / ``curated`` / ``corpus`` / ``drug_name`` — rows of the committed resources under
  ``assistant/resources/`` (curated abbreviations, curated lay synonyms, disease phrases learned from the NCBI
  corpus training split by ``assistant/linking_terms.py``, and brand and other names of drugs from the
  ``drug-named-entity-recognition`` package by ``assistant/linking_drugnames.py``).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from assistant.linking_text import STOPWORDS, is_acronym, name_key, tokenize
from kg.errors import KGError
from kg.names import NameEntry
from kg.store import KnowledgeGraph
from kg.vocab import EntityType

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent / "resources"
#: "Alzheimer's disease" is also said "alzheimers" / "alzheimer's" (never plain "Alzheimer": a surname)
_EPONYM = re.compile(r"^(.+?)(['’]s)? (?:disease|syndrome)$", re.IGNORECASE)


#: names too generic to link on their own ("syndrome" is DOID:225, but says nothing)
GENERIC = frozenset({"syndrome", "disease", "disorder", "illness", "condition", "finding", "abnormality"})


class LinkingResourceError(KGError):
    """A committed linking resource is malformed."""


@dataclass(frozen=True)
class Entry:
    entity_id: str
    entity_type: EntityType
    name: str
    kind: str  # names-table kind, or "eponym", "variant", "abbreviation", "curated", "corpus"
    case_sensitive: bool
    surface: str = ""  # for case-sensitive entries: the capitals the text must show, if not ``name``


@dataclass
class Dictionary:
    """Folded name key -> entries, the automaton over them, and the token vocabulary for fuzzy matching."""

    entries: dict[str, list[Entry]]
    automaton: ahocorasick.Automaton
    vocabulary: set[str]
    by_initial: dict[str, list[str]] = field(default_factory=dict)
    resource_counts: dict[str, int] = field(default_factory=dict)


def read_resource(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a committed TSV resource ('#' lines are comments); ``LinkingResourceError`` if malformed."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t")
    if tuple(reader.fieldnames or ()) [:len(columns)] != columns:
        raise LinkingResourceError(f"{path}: expected columns {columns}, found {reader.fieldnames}")
    for number, row in enumerate(reader, start=2):
        if any(not row.get(c) for c in columns):
            raise LinkingResourceError(f"{path}: row {number} lacks one of {columns}: {row}")
        rows.append(row)
    return rows


#: committed resources: (file, dictionary kind, required columns)
RESOURCE_FILES = (("abbreviations.tsv", "abbreviation"), ("lay_synonyms.tsv", "curated"),
                  ("ncbi_train_terms.tsv", "corpus"), ("drug_names.tsv", "drug_name"))


def build_dictionary(kg: KnowledgeGraph, resources: Path = RESOURCES, corpus: bool = True) -> Dictionary:
    """``corpus=False`` leaves out the terms learned from the NCBI training split (``medkg link-terms`` uses
    this to rewrite them)."""
    names = kg.names()
    types = {n.entity_id: n.entity_type for n in names}
    preferred = {n.entity_id: n.name for n in names if n.kind == "name"}
    genes = {n.name for n in names if n.entity_type is EntityType.GENE}
    entries: dict[str, list[Entry]] = defaultdict(list)
    for n in names:
        key = name_key(n.name)
        sensitive = is_acronym(n.name)
        if not key or (not sensitive and (key in STOPWORDS or key in GENERIC or len(key) < 3)):
            continue
        if sensitive and n.entity_type is not EntityType.GENE and n.name in genes:
            continue  # "WT1", "HFE", "RB1" name diseases in DO but are far more often the gene
        entries[key].append(Entry(n.entity_id, n.entity_type, n.name, n.kind, sensitive))
        if "," in n.name and not sensitive:  # "Muscular dystrophy, Duchenne" -> "duchenne muscular dystrophy"
            head, _, tail = n.name.rpartition(",")
            entries[name_key(f"{tail} {head}")].append(Entry(n.entity_id, n.entity_type, n.name, n.kind, False))
        if n.entity_type is not EntityType.DISEASE:
            continue
        eponym = _EPONYM.match(n.name)
        if eponym and any(c.isupper() for c in eponym.group(1)):
            stem = name_key(eponym.group(1))
            if " " in stem:  # "von Willebrand disease", "Lesch-Nyhan syndrome": the stem alone is unambiguous
                entries[stem].append(Entry(n.entity_id, n.entity_type, n.name, n.kind, False))
            elif eponym.group(2) and len(stem) >= 5 and stem not in STOPWORDS:  # "Alzheimer's" needs its s
                entries[stem].append(Entry(n.entity_id, n.entity_type, n.name, "eponym", False))
    for key, entry in _numbered_stems(names).items():
        if not any(e.entity_type is EntityType.DISEASE for e in entries.get(key, ())):
            entries[key].append(entry)
    for key, entry in _headless_stems(names).items():
        if key not in entries:
            entries[key].append(entry)
    counts = {}
    for file, kind in RESOURCE_FILES:
        if kind == "corpus" and not corpus:
            continue
        if not (resources / file).exists():
            rebuild = {"corpus": "medkg link-terms", "drug_name": "medkg link-drugnames"}.get(kind)
            raise LinkingResourceError(f"{resources / file} is missing: restore it from git"
                                       + (f" or run `{rebuild}`" if rebuild else ""))
        rows = read_resource(resources / file, ("phrase", "entity_id"))
        known = [r for r in rows if r["entity_id"] in types]
        counts[file] = len(known)
        if len(known) < len(rows):
            log.debug("%s: %d of %d ids are not in this KG", file, len(rows) - len(known), len(rows))
        for r in known:
            sensitive = r.get("case", "insensitive") == "sensitive"
            entries[name_key(r["phrase"])].append(Entry(r["entity_id"], types[r["entity_id"]],
                                                          preferred.get(r["entity_id"], r["phrase"]), kind, sensitive,
                                                          r["phrase"]))
    automaton = ahocorasick.Automaton()
    vocabulary: set[str] = set()
    for key in entries:
        automaton.add_word(f" {key} ", key)
        vocabulary.update(key.split())
    automaton.make_automaton()
    by_initial: dict[str, list[str]] = defaultdict(list)
    for word in sorted(vocabulary):
        if len(word) >= 4 and word.isalpha():
            by_initial[word[0]].append(word)
    return Dictionary(dict(entries), automaton, vocabulary, dict(by_initial), counts)


_NUMBERED = re.compile(r"^(.+?)(?:,? type)? (?:1|I|1A)$", re.IGNORECASE)


def _numbered_stems(names: list[NameEntry]) -> dict[str, Entry]:
    """"Schwartz-Jampel syndrome 1", "myotonic dystrophy type 1" are also said without the number: the stem
    key -> the type-1 disease (used only where no disease has the stem as a name)."""
    stems: dict[str, Entry] = {}
    for n in names:
        match = _NUMBERED.match(n.name) if n.entity_type is EntityType.DISEASE else None
        if match and len(match.group(1)) >= 6:
            key = name_key(match.group(1))
            if key not in GENERIC and key not in STOPWORDS:
                stems.setdefault(key, Entry(n.entity_id, n.entity_type, n.name, "variant", False))
    return stems


_HEADED = re.compile(r"^(\S+ \S+(?: \S+)?) (?:syndrome|disease|disorder)$", re.IGNORECASE)


def _headless_stems(names: list[NameEntry]) -> dict[str, Entry]:
    """"carpal tunnel syndrome", "irritable bowel syndrome", "sickle cell disease" are also said without their
    generic head: the two- or three-word stem of a preferred name -> the disease, where the stem is no KG name at
    all and only one disease has it ("shaky hand syndrome", a synonym, must not make "shaky hands" a disease)."""
    stems: dict[str, list[Entry]] = defaultdict(list)
    for n in names:
        match = _HEADED.match(n.name) if n.entity_type is EntityType.DISEASE and n.kind == "name" else None
        if match:
            stems[name_key(match.group(1))].append(Entry(n.entity_id, n.entity_type, n.name, "variant", False))
    return {key: found[0] for key, found in stems.items() if len({e.entity_id for e in found}) == 1}


def initialism_index(names: list[NameEntry]) -> dict[str, set[str]]:
    """Initials of every multi-word disease name -> disease ids: all words ("PWS" Prader-Willi syndrome) and
    content words only ("VHL" von Hippel-Lindau disease). Collides a lot: only a last resort."""
    index: dict[str, set[str]] = defaultdict(set)
    for n in names:
        if n.entity_type is EntityType.DISEASE and not n.name.isupper():
            words = [t.surface.lower() for t in tokenize(n.name)]
            content = [w for w in words if w not in STOPWORDS and w not in ("disease", "syndrome")]
            for letters in {"".join(w[0] for w in words), "".join(w[0] for w in content)}:
                if 2 <= len(letters) <= 6 and len(words) >= 2:
                    index[letters].add(n.entity_id)
    return dict(index)
