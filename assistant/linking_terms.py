"""Disease terminology learned from the NCBI disease corpus *training* split (public domain, NLM).

Dictionary-based normalisers (DNorm, the sieve of D'Souza & Ng 2015) add the training mentions to the
terminology: abstracts name diseases in ways no ontology lists ("myotonic dystrophy" for DO's "myotonic
dystrophy type 1", "C7 deficiency", "breast-ovarian cancer"). ``corpus_terms`` turns the training split's
gold mentions into rows of ``resources/ncbi_train_terms.tsv`` (kind ``corpus`` in the dictionary), keeping
only what fills a gap and cannot mislead a patient's question:

* the gold concept maps to exactly one DOID (through the KG's MeSH/OMIM xrefs);
* at least ``min_share`` of the phrase's training occurrences agree on that DOID;
* the phrase is not a short form ("DM" is myotonic dystrophy in these abstracts, diabetes at a clinic:
  short forms are resolved from each text's own definitions instead) and not a generic word;
* the KG has no disease of that name already (the ontology's own names win).

The development split never feeds this table; ``medkg eval linking`` scores on it.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

from assistant.linking_dictionary import GENERIC, RESOURCES, Dictionary
from assistant.linking_eval import REPO, Document, gold_doids
from assistant.linking_text import STOPWORDS, is_acronym, name_key, short_form, tokenize
from kg.vocab import EntityType

NCBI_TRAIN = REPO / "bundle" / "linking" / "NCBItrainset_corpus.txt.gz"
TERMS_FILE = RESOURCES / "ncbi_train_terms.tsv"
HEADER = ("# Disease phrases of the NCBI disease corpus training split (public domain, NLM; Dogan et al. 2014)\n"
          "# -> DOIDs via the KG's MeSH/OMIM xrefs. Written by `medkg link-terms`; see assistant/linking_terms.py.\n")


def corpus_terms(documents: list[Document], mapping: dict[str, set[str]], dictionary: Dictionary,
                 min_share: float = 0.75) -> list[tuple[str, str, int]]:
    """(phrase, DOID, occurrences) rows, sorted by phrase."""
    votes: dict[str, Counter] = defaultdict(Counter)
    surface: dict[str, Counter] = defaultdict(Counter)
    for doc in documents:
        for gold in doc.mentions:
            key = name_key(gold.text)
            tokens = tokenize(gold.text)
            if (len(key) < 4 or key in STOPWORDS or key in GENERIC or is_acronym(gold.text)
                    or (len(tokens) == 1 and short_form(tokens[0].surface))):
                continue
            doids = gold_doids(gold, mapping)
            votes[key][next(iter(doids)) if len(doids) == 1 else None] += 1
            surface[key][gold.text.lower()] += 1
    rows = []
    for key, counter in votes.items():
        doid, count = counter.most_common(1)[0]
        if doid is None or count < min_share * sum(counter.values()):
            continue
        if any(e.entity_type is EntityType.DISEASE for e in dictionary.entries.get(key, ())):
            continue
        rows.append((surface[key].most_common(1)[0][0], doid, count))
    return sorted(rows)


def write_terms(rows: list[tuple[str, str, int]], path: Path = TERMS_FILE) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(("phrase", "entity_id", "count"))
        writer.writerows(rows)
