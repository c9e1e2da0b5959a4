"""Which facts matter to the asker: a relevance score per question intent, learned from what clinicians name first.

The KG holds every drug PharmacotherapyDB lists for migraine, from sumatriptan to methylergometrine, and every
side effect any label of ibuprofen lists, the neonatal intravenous label included; an answer can name a few.
A good clinician names the established, widely used ones first. Each candidate of the asked relations
(``kg.subgraph.ranked_edges``) gets these features, each in [0, 1] (``FEATURES``):

    kind                 therapeutic kind: treats > palliates > a label indication (relief first for an attack)
    tier, sources        curation tier (expert-curated > curated database > text-mined); sources that agree
    freq, hasfreq, logfreq   side effects and phenotypes: how often when known (log scale: 1% vs 10% matters)
    degree               how established the other end is in the KG (a drug's uses and labels, a finding's drugs)
    docs, tog, pmi       how often the literature corpus names it, names it with the asked entity, and the ratio
    breadth              how many conditions the drug's labels list (a systemic steroid lists a hundred)
    atc2, atc3, atc4     the share of the seed's other candidate drugs in the same ATC group (level 2, 3, 4):
                         the mainstream classes for a disease hold many drugs (ACE inhibitors and sartans for
                         hypertension, inhaled agents for asthma, triptans for migraine)
    class_share          the same by the KG's specific pharmacologic classes (``SPECIFIC_CLASS``): DrugBank's
                         slim table has no ATC code for lisinopril or hydrochlorothiazide
    approved, withdrawn  DrugBank's groups
    peer, lift           a side effect: the share of the drug's peers (drugs of a specific class or ATC level-4
                         group it belongs to) whose labels list it, and that share against all labelled drugs'
                         (log ratio): what a class is known for (cough on ACE inhibitors, weight gain and high
                         blood sugar on glucocorticoids) over what every label lists (nausea, headache)
    treats, pall, ind, pheno, target   which relation, and DrugBank's "target" role of a drug-gene fact
    named_first          the share of the team's labelled rows about the seed and this kind of question that
                         list the item as what a clinician names first (``assistant.first_named``; 0 for a
                         topic they never asked)

and the score is a linear model per kind of question (``GROUP``: treatments, side effects, findings, genes,
targets, classes) fitted by logistic regression (scikit-learn) on the tune half of the usefulness set and the
scored blind answer batches: positives are what the row names first, its poor first answers count 5 times as
negatives. ``medkg relevance fit`` refits it and reports it on the held-out half against the hand-set weights of
the previous release (``Weights``), measured in the same run; ``assistant/resources/relevance_model.json`` holds
the coefficients and the figures. The hand-set score stays as the baseline:

    score = kind * 1 + tier * 0.6 + freq * 0.4 + degree * 0.6 + tog * 0.5
    (a drug's targets: fewer edges first, DrugBank's "target" role 1, agreeing sources 0.5; genes: sources)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.first_named import FirstNamed
from kg.errors import ArtefactMismatchError
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


MODEL_PATH = Path(__file__).resolve().parent / "resources" / "relevance_model.json"
REFIT_COMMAND = "medkg relevance fit"

FEATURES = ("kind", "tier", "freq", "hasfreq", "logfreq", "degree", "docs", "tog", "pmi", "breadth", "sources",
            "target", "treats", "pall", "ind", "pheno", "atc2", "atc3", "atc4", "class_share", "approved",
            "withdrawn", "peer", "lift", "named_first")
#: a pharmacologic class with at most this many drugs in the KG is specific ("ACE inhibitors", not "Enzyme
#: Inhibitors"): sharing one says two drugs work the same way
SPECIFIC_CLASS = 30

#: relation -> the kind of question whose model scores it
GROUP = {Relation.TREATS: "treatment", Relation.PALLIATES: "treatment", Relation.INDICATED_FOR: "treatment",
         Relation.CAUSES_SIDE_EFFECT: "side_effect", Relation.HAS_SYMPTOM: "finding",
         Relation.HAS_PHENOTYPE: "finding", Relation.ASSOCIATED_WITH_GENE: "gene", Relation.BINDS_GENE: "target",
         Relation.IN_CLASS: "class"}
OTHER_GROUP = "other"
_READ_TRIPLE = frozenset({Relation.ASSOCIATED_WITH_GENE, Relation.BINDS_GENE, Relation.IN_CLASS})


def _scaled(count: float, top: float) -> float:
    return min(1.0, math.log1p(max(0.0, count)) / math.log1p(top))


@dataclass(frozen=True)
class Weights:
    """The hand-set score of the previous release, kept as the baseline ``medkg relevance fit`` reports against."""
    kind: float = 1.0
    tier: float = 0.6
    frequency: float = 0.4
    degree: float = 0.6
    together: float = 0.5
    target: float = 1.0
    sources: float = 0.5

    def score(self, relation: Relation, f: dict[str, float]) -> float:
        degree, sources = f["degree"], 0.0
        if relation is Relation.IN_CLASS:  # "Dipeptidyl Peptidase 4 Inhibitor" says more than "Enzyme Inhibitors"
            degree = 1.0 - degree
        if relation is Relation.ASSOCIATED_WITH_GENE:  # several sources agreeing, not how studied the gene is
            degree, sources = 0.0, f["sources"] * 2
        target = 0.0
        if relation is Relation.BINDS_GENE:  # what it acts on, not the enzymes handling hundreds of drugs
            degree, target, sources = 1.0 - degree, f["target"], f["sources"]
        return (self.kind * f["kind"] + self.tier * f["tier"] + self.frequency * f["freq"] + self.degree * degree
                + self.together * f["tog"] + self.target * target + self.sources * sources)


@dataclass(frozen=True)
class RelevanceModel:
    """A linear score per question kind: ``intercepts[group] + sum(coefficients[group][f] * value_f)``."""
    intercepts: dict[str, float]
    coefficients: dict[str, dict[str, float]]
    about: dict = field(default_factory=dict, compare=False)  # how and on what it was fitted, and its figures

    def score(self, relation: Relation, f: dict[str, float]) -> float:
        group = GROUP.get(relation, OTHER_GROUP)
        if group not in self.coefficients:  # a kind the training questions never asked: the hand-set score
            return Weights().score(relation, f)
        weights = self.coefficients[group]
        return self.intercepts.get(group, 0.0) + sum(w * f.get(name, 0.0) for name, w in weights.items())

    def save(self, path: Path = MODEL_PATH) -> None:
        body = {"features": list(FEATURES), "intercepts": self.intercepts, "coefficients": self.coefficients,
                "about": self.about}
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> RelevanceModel:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            coefficients = {g: {f: float(w) for f, w in ws.items()} for g, ws in body["coefficients"].items()}
            model = cls(intercepts={g: float(v) for g, v in body["intercepts"].items()}, coefficients=coefficients,
                        about=body.get("about", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ArtefactMismatchError(path, f"the relevance model will not read: {error}", "relevance model",
                                        REFIT_COMMAND) from None
        unknown = {f for ws in model.coefficients.values() for f in ws} - set(FEATURES)
        if unknown:
            raise ArtefactMismatchError(path, f"features this code does not compute: {sorted(unknown)}",
                                        "relevance model", REFIT_COMMAND)
        return model


@dataclass(frozen=True)
class Scored:
    triple_id: str
    seed: str
    other: str
    relation: Relation
    score: float
    features: dict[str, float] = field(default_factory=dict, compare=False)


class Relevance:
    """Scores the candidate facts of a seed. ``literature`` (an opened ``LiteratureIndex``, optional) gives the
    corpus counts; ``model`` the learned score (default: the committed one), ``weights`` the hand-set baseline
    instead. ``trace``, when a list, records each ``rank`` call's ``members`` and ranking (``medkg relevance fit``
    reads them, so the candidates are not scored twice)."""

    def __init__(self, kg: KnowledgeGraph, literature=None, weights: Weights | None = None,
                 model: RelevanceModel | None = None, pool: int = 1000, first_named: FirstNamed | None = None) -> None:
        self.kg, self.literature, self.pool = kg, literature, pool
        self._scorer: Weights | RelevanceModel | None = weights or model
        self._first_named = first_named
        self.trace: list | None = None

    @property
    def first_named(self) -> FirstNamed:
        if self._first_named is None:  # read on first use, as the model
            self._first_named = FirstNamed.load()
        return self._first_named

    @first_named.setter
    def first_named(self, table: FirstNamed) -> None:
        self._first_named = table

    def named_first(self, seed: str, relation: Relation, table: FirstNamed | None = None) -> dict[str, float]:
        """The items the table lists first for the seed (or a record of its concept) and the relation's kind of
        question, each with the share of the topic's rows naming it, and the records of each item's concept."""
        table = self.first_named if table is None else table
        shares = table.shares((seed, *self.kg.same_concept(seed)), GROUP.get(relation, OTHER_GROUP))
        out: dict[str, float] = {}
        for item, share in shares.items():
            for same in (item, *self.kg.same_concept(item)):
                out[same] = max(out.get(same, 0.0), share)
        return out

    @property
    def scorer(self) -> Weights | RelevanceModel:
        if self._scorer is None:  # read on first use: ``medkg relevance fit`` works without one
            self._scorer = RelevanceModel.load()
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: Weights | RelevanceModel) -> None:
        self._scorer = scorer

    @functools.cached_property
    def _names(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for entry in self.kg.names():
            names = table.setdefault(entry.entity_id, [])
            if len(names) < 30:
                names.append(entry.name)
        return table

    def names_of(self, entity_id: str) -> list[str]:
        """The entity's names and synonyms in the KG (at most 30)."""
        return list(self._names.get(entity_id, ()))

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

    def warm(self) -> None:
        """Read the attribute tables now (about 0.4 s), not during the first question."""
        _ = self._atc, self._groups, self._labelled_drugs

    @functools.cached_property
    def _atc(self) -> dict[str, tuple[str, ...]]:
        return self.kg.attribute_table("atc_code")

    @functools.cached_property
    def _groups(self) -> dict[str, tuple[str, ...]]:
        return self.kg.attribute_table("drug_group")

    def features(self, seed: str, relation: Relation, candidate: Ranked, acute: bool = False) -> dict[str, float]:
        """The candidate's features but the ATC shares, which need the whole pool (``rank``)."""
        triple_id, other, evidence, degree = candidate
        # the sources and DrugBank's role of a fact are read from the store (about 0.3 ms a fact): only where they
        # say something, a disease's genes and a drug's targets and classes, not for hundreds of side effects
        triple = self.kg.triple(triple_id) if relation in _READ_TRIPLE else None
        tier = math.floor(evidence)
        frequency = evidence - tier
        documents, together = self.documents(other).size, self.together(seed, other)
        groups = self._groups.get(other, ())
        drug = other in self._groups or other in self._atc
        return {
            "kind": (ACUTE_KIND if acute else KIND).get(relation, 1.0), "tier": tier / 3,
            "freq": frequency, "hasfreq": float(frequency > 0), "logfreq": _scaled(frequency * 100, 100),
            "degree": _scaled(degree, 1000), "docs": _scaled(documents, 500), "tog": _scaled(together, 20),
            "pmi": math.log((together + 1) / (documents + 1)) / 5,
            "breadth": _scaled(self.indications(other), 200) if drug else 0.0,
            "sources": min(1.0, len(triple.sources) / 3) if triple else 0.0,
            "target": float("target" in (triple.evidence or "")) if triple else 0.0,
            "treats": float(relation is Relation.TREATS), "pall": float(relation is Relation.PALLIATES),
            "ind": float(relation is Relation.INDICATED_FOR), "pheno": float(relation is Relation.HAS_PHENOTYPE),
            "approved": float("approved" in groups), "withdrawn": float(bool({"withdrawn", "illicit"} & set(groups))),
            "peer": 0.0, "lift": 0.0,  # side effects: set by ``_peer_shares`` over the whole pool
            "named_first": 0.0,  # set by ``rank`` from the first-named table
        }

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 - one per drug of an open KG
    def specific_classes(self, drug: str) -> frozenset[str]:
        """The drug's pharmacologic classes of at most ``SPECIFIC_CLASS`` drugs."""
        return frozenset(c for _, c, _, _ in ranked_edges(self.kg, drug, Relation.IN_CLASS, 100)
                         if self.class_size(c) <= SPECIFIC_CLASS)

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 - one per class of an open KG
    def class_size(self, drug_class: str) -> int:
        return len(ranked_edges(self.kg, drug_class, Relation.IN_CLASS, SPECIFIC_CLASS + 1))

    def _shares(self, pool: list[tuple[Relation, Ranked, dict[str, float]]]) -> None:
        """The class and ATC shares, counted among the seed's curated treatments (PharmacotherapyDB's treats and
        palliates) where it has any: the label indications text-mined from SIDER cluster by accident (four statins'
        labels name hypothyroidism as a cause of high cholesterol), and a cluster of noise is not a mainstream class."""
        drugs = {candidate[1] for relation, candidate, _ in pool if GROUP.get(relation) == "treatment"}
        peers = {candidate[1] for relation, candidate, _ in pool
                 if relation in (Relation.TREATS, Relation.PALLIATES)} or drugs
        groups = {"class_share": {d: self.specific_classes(d) for d in drugs}}
        for level, width in (("atc2", 3), ("atc3", 4), ("atc4", 5)):
            groups[level] = {d: frozenset(c[:width] for c in self._atc.get(d, ())) for d in drugs}
        for name, of in groups.items():
            for _, candidate, features in pool:
                mine = of.get(candidate[1], frozenset())
                sharing = sum(1 for d in peers if d != candidate[1] and mine & of[d])
                features[name] = sharing / max(1, len(peers - {candidate[1]}))

    @functools.cached_property
    def _labelled_drugs(self) -> int:
        """How many drugs list any side effect (the base rate's denominator)."""
        if not self.kg.has_adjacency:
            return 1000
        adjacency = self.kg.adjacency
        halves = adjacency.relation == list(Relation).index(Relation.CAUSES_SIDE_EFFECT)
        return max(1, int(np.unique(adjacency.head[adjacency.edge[halves]]).size))

    @functools.lru_cache(maxsize=2_000)  # noqa: B019 - one per drug asked about
    def peer_effects(self, drug: str) -> tuple[dict[str, int], int]:
        """The side effects the drug's peers list (the drugs sharing a specific pharmacologic class or an ATC
        level-4 group with it), with how many peers list any."""
        peers = {member for c in self.specific_classes(drug) for member in self.members(c)}
        groups = {code[:5] for code in self._atc.get(drug, ())}
        if groups:
            peers |= {d for d, codes in self._atc.items() if groups & {code[:5] for code in codes}}
        peers.discard(drug)
        counts: Counter[str] = Counter()
        listing = 0
        for peer in sorted(peers):
            effects = [other for _, other, _, _ in ranked_edges(self.kg, peer, Relation.CAUSES_SIDE_EFFECT, 2000)]
            listing += bool(effects)
            counts.update(effects)
        return dict(counts), listing

    def _peer_shares(self, seed: str, pool: list[tuple[Relation, Ranked, dict[str, float]]]) -> None:
        effects = [(candidate, f) for relation, candidate, f in pool if relation is Relation.CAUSES_SIDE_EFFECT]
        if not effects:
            return
        counts, listing = self.peer_effects(seed)
        if not listing:
            return
        for (_, other, _, degree), features in effects:
            share, base = counts.get(other, 0) / listing, min(1.0, degree / self._labelled_drugs)
            features["peer"] = share
            features["lift"] = max(-1.0, min(1.0, math.log((share + 0.02) / (base + 0.02)) / 3))

    def rank(self, seed: str, relations: Sequence[Relation], acute: bool = False,
             members: frozenset[str] = frozenset()) -> list[Scored]:
        """The seed's facts of ``relations``: each item (the other end) once, most relevant first (ties: triple
        id), then their other facts in the same order. ``acute``: the question asks
        for relief of an attack ("acute migraine", "a gout flare"), so symptomatic relief ranks first;
        ``members``: drugs of a class the question names ("which antibiotic for cystitis"), ranked first."""
        # a finding or item named as the seed itself (OMIM's "Systemic lupus erythematosus" phenotype of SLE) says
        # nothing about it
        itself = {seed, *self.kg.same_concept(seed)}
        own_name = self.kg.name(seed).casefold()
        pool = [(relation, candidate, self.features(seed, relation, candidate, acute))
                for relation in dict.fromkeys(relations)
                for candidate in ranked_edges(self.kg, seed, relation, self.pool)
                if candidate[1] not in itself and self.kg.name(candidate[1]).casefold() != own_name]
        self._shares(pool)
        self._peer_shares(seed, pool)
        for relation in dict.fromkeys(relations):
            listed = self.named_first(seed, relation)
            for _, candidate, features in (p for p in pool if p[0] is relation):
                features["named_first"] = listed.get(candidate[1], 0.0)
        scored = [Scored(candidate[0], seed, candidate[1], relation, round(self.scorer.score(relation, f), 6), f)
                  for relation, candidate, f in pool]
        # each item once first, at its best score, stated by its most curated fact (PharmacotherapyDB's
        # "sumatriptan palliates migraine" before the label's); then the items' other facts
        hand = Weights()
        scored.sort(key=lambda s: (-hand.score(s.relation, s.features), s.triple_id))
        best: dict[str, Scored] = {}
        for s in scored:
            if s.other not in best or s.score > best[s.other].score:
                best[s.other] = s
        stated = {s.other: s for s in reversed(scored)}  # the most curated fact of each item
        firsts = sorted(best.values(), key=lambda s: (members and s.other not in members, -s.score, s.triple_id))
        leads = [dataclasses.replace(stated[s.other], score=s.score) for s in firsts]  # the item's score
        lead_ids = {s.triple_id for s in leads}
        rest = sorted((s for s in scored if s.triple_id not in lead_ids),
                      key=lambda s: (members and s.other not in members, -s.score, s.triple_id))
        if self.trace is not None:
            self.trace.append((members, leads + rest))
        return leads + rest

    @functools.lru_cache(maxsize=20_000)  # noqa: B019 - one per drug of an open KG
    def indications(self, drug: str) -> int:
        """How many conditions the drug's labels list (``indicated_for`` edges)."""
        return len(ranked_edges(self.kg, drug, Relation.INDICATED_FOR, 5000))

    def members(self, drug_class: str) -> frozenset[str]:
        """The drugs the KG puts in a class."""
        return frozenset(other for _, other, _, _ in ranked_edges(self.kg, drug_class, Relation.IN_CLASS, 2000))
