"""Drug names people write (brands, UK and US names, common synonyms) -> the KG's compounds, from a well-kept
package: ``drug-named-entity-recognition`` (Fast Data Science, MIT licence) ships about 107,000 name variants
(DrugBank open vocabulary, MeSH, Wikipedia, NHS brand lists) mapped to canonical drugs with DrugBank ids.

``medkg link-drugnames`` writes ``assistant/resources/drug_names.tsv`` from it: each variant whose canonical drug
is a compound of this KG (by DrugBank id, else by the canonical name), unless the KG already has the name, it is
made of ordinary English words ("sits", "caps", "all clear" name obscure products) and is not the drug's own
name, or it is not a plain name (inverted "violet, crystal", wiki residue "publisher=…"). The
resource is committed, so the linker reads a small reviewed table instead of importing the package at start.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

from assistant.linking_text import common_english, name_key
from kg.store import KnowledgeGraph
from kg.vocab import EntityType

RESOURCE = Path(__file__).resolve().parent / "resources" / "drug_names.tsv"
PACKAGE = "drug_named_entity_recognition"
#: a name is plain letters, digits, spaces, hyphens and apostrophes, starting with a letter
_PLAIN = re.compile(r"^[a-z][a-z0-9' -]*[a-z0-9]$")
#: words seen at least this often in pyspellchecker's English list are ordinary even when no dictionary has them
ENGLISH_COUNT = 1000


def ordinary_words():
    """``ordinary(word)``: an English dictionary word (Webster's 2nd, from ``english-words``: it predates every
    brand name), or its plural, or a word common in web text."""
    from english_words import get_english_words_set

    dictionary = get_english_words_set(["web2"], lower=True)
    frequent = common_english(ENGLISH_COUNT)

    def ordinary(word: str) -> bool:
        return (word in dictionary or (word.endswith("s") and word[:-1] in dictionary)
                or (word.endswith("es") and word[:-2] in dictionary) or word in frequent)

    return ordinary


def package_dictionary() -> dict:
    """The package's own dictionary file (variants -> canonical -> data), read without importing the package
    (its import builds n-gram tables for fuzzy search: seconds)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed: `pip install drug-named-entity-recognition`")
    with bz2.open(Path(spec.origin).parent / "drug_ner_dictionary.pkl.bz2", "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - the package's own data file


def drug_name_rows(kg: KnowledgeGraph, dictionary: dict | None = None) -> Iterator[tuple[str, str, str, str]]:
    """(phrase, entity id, canonical name, "brand" or "synonym") for every variant kept (see the module)."""
    dictionary = dictionary or package_dictionary()
    ordinary = ordinary_words()
    names = kg.names()
    known = {name_key(n.name) for n in names}
    compounds = {n.entity_id for n in names if n.entity_type is EntityType.COMPOUND}
    by_name = {name_key(n.name): n.entity_id for n in names if n.entity_type is EntityType.COMPOUND}
    canonical_data, variant_data = dictionary["drug_canonical_to_data"], dictionary["drug_variant_to_variant_data"]
    for variant, canonicals in sorted(dictionary["drug_variant_to_canonical"].items()):
        key = name_key(variant)
        if not _PLAIN.match(variant) or len(key) < 4 or key in known:
            continue
        ids = set()
        for canonical in canonicals:
            drugbank = canonical_data.get(canonical, {}).get("drugbank_id")
            entity = f"DRUGBANK:{drugbank}" if drugbank else None
            ids.add(entity if entity in compounds else by_name.get(name_key(canonical)))
        ids.discard(None)
        if len(ids) != 1:  # unknown here, or a combination product naming several drugs
            continue
        if all(ordinary(word) for word in key.split()) and variant not in canonicals:
            continue
        kind = "brand" if variant_data.get(variant, {}).get("is_brand") else "synonym"
        yield variant, ids.pop(), canonicals[0], kind


def write_resource(kg: KnowledgeGraph, path: Path = RESOURCE) -> int:
    rows = list(drug_name_rows(kg))
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("# Drug names people write -> KG compounds; written by `medkg link-drugnames` from the\n"
                     "# drug-named-entity-recognition package (Fast Data Science, MIT licence). Do not edit by hand.\n")
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(("phrase", "entity_id", "concept", "kind"))
        writer.writerows(rows)
    return len(rows)
