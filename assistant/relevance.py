"""Which facts matter to the asker: a transparent weighted relevance score per question intent.

The KG holds every drug PharmacotherapyDB lists for migraine, from sumatriptan to methylergometrine, and every
side effect any label of ibuprofen lists, the neonatal intravenous label included; an answer can name a few.
A good clinician names the established, widely used ones first. Candidates of the asked relations
(``kg.subgraph.ranked_edges``) are scored by

    score = kind[relation] * w_kind               therapeutic kind: treats > palliates > a label indication
          + tier / 3 * w_tier                      curation: expert-curated > curated database > text-mined
          + frequency * w_frequency                side effects and phenotypes: how often (0-1) when known
          + log1p(degree) / log1p(1000) * w_degree how established the other end is in the KG (a drug's uses
                                                   and labels, a side effect or symptom across drugs and diseases)
          + log1p(documents) / log1p(500) * w_literature   how often the literature corpus names it
          + log1p(co-mentions) / log1p(20) * w_together    how often it is named with the asked entity

except for a drug's targets (``binds_gene``), where a gene with fewer edges comes first and DrugBank's "target"
role counts 1, and each source that records the pair a third of 0.5 (CYP3A4 metabolises hundreds of drugs; HMGCR,
recorded by ChEMBL, DrugBank and DrugCentral, is what atorvastatin acts on).

each term in [0, 1] before its weight. The weights were chosen by measurement on the tune half of the
usefulness set (``medkg eval usefulness --half tune``) and reported on the held-out half; ``Weights`` holds them.
Measured and left out (weight 0): the corpus document count (first-hit 48 vs 57 of 81 on the tune half) and a
penalty on drugs with many label indications (56 vs 57). The co-mention count at 0.5 kept first-hit (57) and cut
poor first answers from 15 to 11 of 81.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kg.store import KnowledgeGraph
from kg.subgraph import Ranked, ranked_edges
from kg.vocab import EntityType, Relation

#: relation -> therapeutic kind (how directly the fact answers "what helps"/"what does it do")
KIND = {Relation.TREATS: 1.0, Relation.PALLIATES: 0.8, Relation.INDICATED_FOR: 0.2, Relation.HAS_SYMPTOM: 1.0,
        Relation.HAS_PHENOTYPE: 0.9}

#: the same for a question about an attack or a flare: relief first
ACUTE_KIND = {**KIND, Relation.TREATS: 0.8, Relation.PALLIATES: 1.0}

#: what a question about an entity of this type wants when it names no relation ("metformin?", "gout")
DEFAULT_RELATIONS = {
    EntityType.DISEASE: (Relation.TREATS, Relation.PALLIATES, Relation.HAS_SYMPTOM, Relation.HAS_PHENOTYPE,
                         Relation.INDICATED_FOR),
    EntityType.COMPOUND: (Relation.TREATS, Relation.PALLIATES, Relation.INDICATED_FOR,
                          Relation.CAUSES_SIDE_EFFECT),
}


@dataclass(frozen=True)
class Weights:
    kind: float = 1.0
    tier: float = 0.6
    frequency: float = 0.4
    degree: float = 0.6
    literature: float = 0.0  # measured: the corpus counts did not help on the tune half (see the module)
    together: float = 0.5  # measured on the tune half: fewer poor first answers, same first-hit
    target: float = 1.0
    sources: float = 0.5
    breadth: float = 0.0


@dataclass(frozen=True)
class Scored:
    triple_id: str
    seed: str
    other: str
    relation: Relation
    score: float
    features: dict[str, float] = field(default_factory=dict, compare=False)


class Relevance:
    """Scores the candidate facts of a seed; ``literature`` (an opened ``LiteratureIndex``, optional) gives the
    document counts."""

    def __init__(self, kg: KnowledgeGraph, literature=None, weights: Weights | None = None,
                 pool: int = 150) -> None:
        self.kg, self.literature, self.weights, self.pool = kg, literature, weights or Weights(), pool

    @functools.cached_property
    def _names(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for entry in self.kg.names():
            names = table.setdefault(entry.entity_id, [])
            if len(names) < 30:
                names.append(entry.name)
        return table

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 - one per entity of an open KG
    def documents(self, entity_id: str) -> np.ndarray:
        """Sorted rows of the literature chunks that hold every word of one of the entity's names."""
        if self.literature is None:
            return np.empty(0, dtype=np.int64)
        from assistant.literature import bm25_tokens

        sparse = self.literature.sparse
        vocabulary, postings = sparse.vocab_dict, sparse.scores
        found: list[np.ndarray] = []
        for name in self._names.get(entity_id, ()):
            tokens = bm25_tokens([name])[0]
            if not tokens or any(t not in vocabulary for t in tokens):
                continue
            rows = None
            for token in dict.fromkeys(tokens):
                i = vocabulary[token]
                here = postings["indices"][postings["indptr"][i]:postings["indptr"][i + 1]]
                rows = here if rows is None else np.intersect1d(rows, here, assume_unique=True)
            found.append(rows)
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(found))

    def together(self, a: str, b: str) -> int:
        return int(np.intersect1d(self.documents(a), self.documents(b), assume_unique=True).size)

    def score(self, seed: str, relation: Relation, candidate: Ranked, acute: bool = False) -> Scored:
        triple_id, other, evidence, degree = candidate
        tier = math.floor(evidence)
        w = self.weights
        kind = (ACUTE_KIND if acute else KIND).get(relation, 1.0)
        features = {
            "kind": kind,
            "tier": tier / 3,
            "frequency": evidence - tier,
            "degree": min(1.0, math.log1p(degree) / math.log1p(1000)),
        }
        if w.literature:  # read the corpus only for a weight that uses it
            features["literature"] = min(1.0, math.log1p(self.documents(other).size) / math.log1p(500))
        if w.together:
            features["together"] = min(1.0, math.log1p(self.together(seed, other)) / math.log1p(20))
        if w.breadth and relation is Relation.INDICATED_FOR:
            # a drug whose labels list dozens of conditions (a systemic steroid, a fluoroquinolone) is rarely the
            # one to name first for any of them
            features["breadth"] = -min(1.0, math.log1p(self.indications(other)) / math.log1p(200))
        if relation is Relation.IN_CLASS:  # "Dipeptidyl Peptidase 4 Inhibitor" says more than "Enzyme Inhibitors"
            features["degree"] = 1.0 - features["degree"]
        if relation is Relation.ASSOCIATED_WITH_GENE:
            # an established association is recorded by several sources (GWAS Catalog, DISEASES, DisGeNET, DOAF:
            # APOE for Alzheimer's); a gene's number of diseases says how studied it is, not how strongly linked
            features["degree"] = 0.0
            features["sources"] = min(1.0, len(self.kg.triple(triple_id).sources) / 3) * 2
        if relation is Relation.BINDS_GENE:
            # a drug's target is what it acts on (DrugBank's "target", HMGCR for atorvastatin), not the enzymes and
            # transporters that handle it: CYP3A4 handles hundreds of drugs, so here fewer edges come first
            triple = self.kg.triple(triple_id)
            features["degree"] = 1.0 - features["degree"]
            features["target"] = float("target" in (triple.evidence or ""))
            features["sources"] = min(1.0, len(triple.sources) / 3)  # ChEMBL, DrugBank and DrugCentral agree
        total = sum(getattr(w, name, 1.0) * value for name, value in features.items())
        return Scored(triple_id, seed, other, relation, round(total, 6), features)

    def rank(self, seed: str, relations: Sequence[Relation], acute: bool = False,
             members: frozenset[str] = frozenset()) -> list[Scored]:
        """The seed's facts of ``relations``, most relevant first (ties: triple id). ``acute``: the question asks
        for relief of an attack ("acute migraine", "a gout flare"), so symptomatic relief ranks first;
        ``members``: drugs of a class the question names ("which antibiotic for cystitis"), ranked first."""
        scored = [self.score(seed, relation, candidate, acute) for relation in dict.fromkeys(relations)
                  for candidate in ranked_edges(self.kg, seed, relation, self.pool)]
        return sorted(scored, key=lambda s: (members and s.other not in members, -s.score, s.triple_id))

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 - one per drug of an open KG
    def indications(self, drug: str) -> int:
        """How many conditions the drug's labels list (``indicated_for`` edges)."""
        return len(ranked_edges(self.kg, drug, Relation.INDICATED_FOR, 5000))

    def members(self, drug_class: str) -> frozenset[str]:
        """The drugs the KG puts in a class."""
        return frozenset(other for _, other, _, _ in ranked_edges(self.kg, drug_class, Relation.IN_CLASS, 2000))
