"""Pretraining data from the KG: a held-out edge split and verbalised training texts.

The generator is pretrained on sentences stating KG facts (``metformin can cause nausea``) and on a
link-prediction objective over the same edges; both must see the *train* edges only, so that the
held-out edges measure what the model learnt rather than what it read.

* ``split_edges`` reads every relation edge from the KG's adjacency arrays (no store reads) and holds
  out a fixed fraction of each relation: 10% of ``treats`` and ``indicated_for``, 5% of every other one.
* ``EdgeSplit.save`` / ``EdgeSplit.load`` write and check ``edge_split.npz`` + ``edge_split.json``.
* ``verbalise`` / ``PHRASINGS`` turn one edge into one sentence, in either direction.
* ``training_texts`` verbalises the train edges, leaving out any text that mentions a held-out pair
  (``leaks`` is the check: it finds held-out name pairs that appear together in a text).

Build the split ahead of training (nanoGPT's ``prepare.py`` step)::

    python -m pretrain.data --out data/pretrain [--data-dir data/kg] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kg.artefacts import sha256_file
from kg.errors import KGError
from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph
from kg.vocab import Relation

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
NPZ_NAME, MANIFEST_NAME = "edge_split.npz", "edge_split.json"
RELATIONS: tuple[Relation, ...] = tuple(Relation)  # relation index = position here (as in kg.adjacency)
#: fraction of each relation's edges held out
DEFAULT_HOLDOUT: dict[Relation, float] = {
    r: 0.10 if r in (Relation.TREATS, Relation.INDICATED_FOR) else 0.05 for r in Relation}
BUILD_COMMAND = "python -m pretrain.data --out DIR [--data-dir DIR] [--seed N]"


class EdgeSplitMismatchError(KGError):
    """An edge split is missing, corrupt, or was made from another KG build."""

    def __init__(self, path: object, detail: str) -> None:
        super().__init__(f"edge split at {path} cannot be used ({detail}): rebuild it with `{BUILD_COMMAND}`")


@dataclass(frozen=True)
class Edges:
    """Aligned edge arrays, each ``(m,)``: entity index of head and tail (into ``EdgeSplit.entities``),
    relation index (into ``EdgeSplit.relations``) and the KG's stable triple id."""

    head: np.ndarray  # int32
    relation: np.ndarray  # int8
    tail: np.ndarray  # int32
    triple_id: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.head)

    def counts(self) -> dict[str, int]:
        """relation name -> number of edges."""
        found = np.bincount(self.relation, minlength=len(RELATIONS))
        return {r.value: int(n) for r, n in zip(RELATIONS, found, strict=True)}

    def select(self, keep: np.ndarray) -> Edges:
        """The edges where the boolean mask ``keep`` (m,) is true, in order."""
        return Edges(self.head[keep], self.relation[keep], self.tail[keep], self.triple_id[keep])

    def pair_keys(self, n_entities: int) -> np.ndarray:
        """(m,) int64 key of each edge's unordered entity pair: ``min * n + max``."""
        lo, hi = np.minimum(self.head, self.tail).astype(np.int64), np.maximum(self.head, self.tail).astype(np.int64)
        return lo * n_entities + hi


@dataclass(frozen=True)
class EdgeSplit:
    """Train and held-out edges of one KG build; ``entities`` (n,) are the CURIEs the indices point at."""

    entities: np.ndarray
    relations: tuple[Relation, ...]
    train: Edges
    held_out: Edges
    seed: int
    fractions: Mapping[Relation, float]
    build_id: str  # the KG build the split was made from

    def link_train(self) -> Edges:
        """The train edges whose entity pair has no held-out edge, under any relation or direction: the edges
        the link-prediction objective and the KG-embedding baselines train on. Glipizide *indicated for* type 2
        diabetes would otherwise teach the held-out glipizide *treats* type 2 diabetes."""
        n = len(self.entities)
        return self.train.select(~np.isin(self.train.pair_keys(n), self.held_out.pair_keys(n)))

    def manifest(self, sha256: str) -> dict:
        train, held = self.train.counts(), self.held_out.counts()
        return {"format_version": FORMAT_VERSION, "seed": self.seed, "kg_build_id": self.build_id,
                "fractions": {r.value: f for r, f in self.fractions.items()},
                "counts": {r.value: {"train": train[r.value], "held_out": held[r.value]} for r in self.relations},
                "entities": len(self.entities), "npz_sha256": sha256}

    def save(self, directory: Path) -> Path:
        """Write ``edge_split.npz`` and its manifest ``edge_split.json`` into ``directory``; returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"entities": self.entities, "relations": np.array([r.value for r in self.relations])}
        for part in ("train", "held_out"):
            edges = getattr(self, part)
            arrays.update({f"{part}_{name}": getattr(edges, name) for name in Edges.__dataclass_fields__})
        with open(directory / NPZ_NAME, "wb") as handle:
            np.savez(handle, **arrays)
        manifest = self.manifest(sha256_file(directory / NPZ_NAME))
        (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path, kg: KnowledgeGraph | None = None) -> EdgeSplit:
        """Read a saved split, checking checksum, format and counts against its manifest, and the build id
        against ``kg`` when given; ``EdgeSplitMismatchError`` (naming the build command) otherwise."""
        directory = Path(directory)
        npz, manifest_path = directory / NPZ_NAME, directory / MANIFEST_NAME
        if not npz.is_file() or not manifest_path.is_file():
            raise EdgeSplitMismatchError(directory, f"{NPZ_NAME} or {MANIFEST_NAME} missing")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # truncated or overwritten: JSONDecodeError, UnicodeDecodeError
            raise EdgeSplitMismatchError(directory, f"unreadable {MANIFEST_NAME}: {error}") from None
        if not isinstance(manifest, dict):
            raise EdgeSplitMismatchError(directory, f"{MANIFEST_NAME} is not an object")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise EdgeSplitMismatchError(directory, f"format version {manifest.get('format_version')}, "
                                                    f"this code reads {FORMAT_VERSION}")
        if sha256_file(npz) != manifest.get("npz_sha256"):
            raise EdgeSplitMismatchError(directory, f"{NPZ_NAME} checksum differs from the manifest")
        if kg is not None and manifest.get("kg_build_id") != kg.manifest.get("build_id"):
            raise EdgeSplitMismatchError(directory, f"made from KG build {manifest.get('kg_build_id')}, "
                                                    f"the KG is build {kg.manifest.get('build_id')}")
        with np.load(npz, allow_pickle=False) as arrays:
            parts = {part: Edges(**{name: arrays[f"{part}_{name}"] for name in Edges.__dataclass_fields__})
                     for part in ("train", "held_out")}
            split = cls(entities=arrays["entities"], relations=tuple(Relation(r) for r in arrays["relations"]),
                        seed=int(manifest["seed"]), build_id=manifest["kg_build_id"],
                        fractions={Relation(r): float(f) for r, f in manifest["fractions"].items()}, **parts)
        if split.relations != RELATIONS or split.manifest(manifest["npz_sha256"]) != manifest:
            raise EdgeSplitMismatchError(directory, "relations or counts differ from the manifest")
        return split


def holdout_size(n: int, fraction: float) -> int:
    """Edges held out of ``n``: ``fraction * n`` rounded half up (``floor(f * n + 0.5)``), so 5% of 10 is 1
    and 5% of 9 is 0; a relation with a single edge keeps it in train."""
    return math.floor(fraction * n + 0.5)


def split_edges(kg: KnowledgeGraph, seed: int = 0, holdout: Mapping[Relation | str, float] | None = None
                ) -> EdgeSplit:
    """Hold out ``holdout[r]`` of each relation's edges (default ``DEFAULT_HOLDOUT``; relations not named
    keep their default), chosen at random but reproducibly.

    Each relation's edges are put in triple-id order (stable across rebuilds, unlike the build's edge
    order) and permuted by ``numpy.random.default_rng((seed, relation index))``: the first
    ``holdout_size(n, f)`` are held out. Seeding per relation keeps one relation's split unchanged when
    another relation gains edges. Both parts stay in relation order, then permutation order.
    """
    fractions = dict(DEFAULT_HOLDOUT)
    for relation, fraction in (holdout or {}).items():
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"held-out fraction of {relation} must be in [0, 1), not {fraction}")
        fractions[Relation(relation)] = float(fraction)
    adjacency = kg.adjacency
    edge_relation = np.empty(len(adjacency.head), dtype=np.int8)
    edge_relation[adjacency.edge] = adjacency.relation  # the CSR lists each edge twice, same relation
    train, held = [], []
    for index, relation in enumerate(RELATIONS):
        edges = np.flatnonzero(edge_relation == index)
        edges = edges[np.argsort(adjacency.triple_ids[edges], kind="stable")]
        edges = edges[np.random.default_rng((seed, index)).permutation(len(edges))]
        k = holdout_size(len(edges), fractions[relation])
        held.append(edges[:k])
        train.append(edges[k:])

    def take(chosen: list[np.ndarray]) -> Edges:
        order = np.concatenate(chosen)
        return Edges(head=adjacency.head[order].astype(np.int32), relation=edge_relation[order],
                     tail=adjacency.tail[order].astype(np.int32), triple_id=adjacency.triple_ids[order])

    return EdgeSplit(entities=adjacency.ids, relations=RELATIONS, train=take(train), held_out=take(held),
                     seed=seed, fractions=fractions, build_id=str(kg.manifest.get("build_id", "")))


# --- verbalisation ---------------------------------------------------------------------------------

#: relation -> sentence templates with ``{h}`` (subject) and ``{t}`` (object) slots; the first half name
#: the head first, the second half the tail first. They state the relation and nothing more (no dose,
#: strength of evidence or frequency), and put no punctuation next to a slot.
PHRASINGS: dict[Relation, tuple[str, ...]] = {
    Relation.TREATS: (
        "{h} treats {t}", "{h} is a treatment for {t}", "{h} is used to treat {t}",
        "{t} can be treated with {h}", "one treatment for {t} is {h}", "{t} is treated with {h}"),
    Relation.PALLIATES: (
        "{h} palliates {t}", "{h} relieves symptoms of {t}", "{h} is used for symptom relief in {t}",
        "symptoms of {t} can be relieved with {h}", "{t} can be palliated with {h}",
        "in {t} symptoms may be eased with {h}"),
    Relation.INDICATED_FOR: (
        "{h} is indicated for {t}", "{h} has {t} as an indication", "an indication of {h} is {t}",
        "{t} is an indication for {h}", "{t} is among the indications of {h}", "for {t} {h} is indicated"),
    Relation.CAUSES_SIDE_EFFECT: (
        "{h} can cause {t}", "{h} may cause {t} as a side effect", "one side effect of {h} is {t}",
        "{t} is a reported side effect of {h}", "{t} can occur as a side effect of {h}",
        "{t} has been reported with {h}"),
    Relation.HAS_SYMPTOM: (
        "{h} can present with {t}", "a symptom of {h} is {t}", "people with {h} may have {t}",
        "{t} is a symptom of {h}", "{t} can occur in {h}", "{t} may be a symptom of {h}"),
    Relation.HAS_PHENOTYPE: (
        "{h} has the phenotype {t}", "{h} can feature {t}", "a clinical feature of {h} is {t}",
        "{t} is a phenotypic feature of {h}", "{t} can be seen in {h}", "{t} is a reported feature of {h}"),
    Relation.ASSOCIATED_WITH_GENE: (
        "{h} is associated with the gene {t}", "{h} has a reported association with {t}",
        "a gene associated with {h} is {t}", "{t} is a gene associated with {h}",
        "the gene {t} has been associated with {h}", "{t} has a reported association with {h}"),
    Relation.BINDS_GENE: (
        "{h} binds {t}", "{h} binds the product of the gene {t}", "a binding target of {h} is {t}",
        "{t} is bound by {h}", "the product of the gene {t} is bound by {h}", "{t} is a binding target of {h}"),
    Relation.RESEMBLES: (
        "{h} resembles {t}", "{h} is similar to {t}", "{h} shares features with {t}",
        "{t} is resembled by {h}", "{t} is a disease that {h} resembles", "{t} has features in common with {h}"),
    Relation.IN_CLASS: (
        "{h} belongs to the class {t}", "{h} is a member of {t}", "{h} is classified as {t}",
        "{t} includes {h}", "one member of {t} is {h}", "{t} is a class that includes {h}"),
    Relation.LOCATED_IN: (
        "{h} is located in {t}", "{h} affects {t}", "the location of {h} is {t}",
        "{t} is the site of {h}", "{t} is affected by {h}", "{t} is a location of {h}"),
    Relation.SUBCLASS_OF: (
        "{h} is a kind of {t}", "{h} is a subtype of {t}", "{h} is a form of {t}",
        "{t} includes {h}", "one type of {t} is {h}", "{t} has {h} as a subtype"),
}


def verbalise(head_name: str, relation: Relation | str, tail_name: str, variant: int) -> str:
    """Sentence ``PHRASINGS[relation][variant]`` with the names filled in; ValueError if out of range."""
    phrasings = PHRASINGS[Relation(relation)]
    if not 0 <= variant < len(phrasings):
        raise ValueError(f"{relation} has phrasings 0..{len(phrasings) - 1}, not {variant}")
    return phrasings[variant].format(h=head_name, t=tail_name)


@dataclass(frozen=True)
class Leak:
    """A training text that names both ends of a held-out edge."""

    text: str
    head: str
    tail: str


class _HeldOutPairs:
    """Finds held-out name pairs in a text.

    Entity names (all of them, casefolded) are matched as whole-word spans, leftmost-longest, so in
    "type 2 diabetes mellitus" only that name is found, not "diabetes mellitus" inside it; a held-out pair
    is reported when both its names are found. Spans are looked up by their first token: a text costs
    O(tokens x name lengths for that token) dictionary reads, not one scan per held-out pair.
    """

    def __init__(self, split: EdgeSplit, names: Sequence[str]) -> None:
        self.partners: dict[str, set[str]] = {}
        for h, t in zip(split.held_out.head.tolist(), split.held_out.tail.tolist(), strict=True):
            a, b = _key(names[h]), _key(names[t])
            self.partners.setdefault(a, set()).add(b)
            self.partners.setdefault(b, set()).add(a)
        self.names = {_key(name) for name in names} | set(self.partners)
        lengths: dict[str, set[int]] = {}
        for name in self.names:
            tokens = name.split(" ")
            lengths.setdefault(tokens[0], set()).add(len(tokens))
        self.lengths = {token: sorted(found, reverse=True) for token, found in lengths.items()}

    def spans(self, text: str) -> list[str]:
        """Entity names in ``text``, leftmost-longest, casefolded."""
        tokens, found, i = text.casefold().split(), [], 0
        while i < len(tokens):
            for n in self.lengths.get(tokens[i], ()):
                span = " ".join(tokens[i:i + n])
                if span in self.names:
                    found.append(span)
                    i += n
                    break
            else:
                i += 1
        return found

    def find(self, text: str) -> Leak | None:
        found = [span for span in self.spans(text) if span in self.partners]
        for position, a in enumerate(found):
            for b in found[position + 1:]:
                if b in self.partners[a]:
                    return Leak(text, a, b)
        return None


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def entity_names(kg: KnowledgeGraph, split: EdgeSplit) -> list[str]:
    """Preferred name of each entity of ``split``, aligned with ``split.entities`` (the CURIE if unnamed)."""
    return [kg.name(entity_id) for entity_id in split.entities.tolist()]


def leaks(texts: Iterable[str], split: EdgeSplit, names: Sequence[str]) -> list[Leak]:
    """Texts naming both ends of some held-out edge (``names`` aligned with ``split.entities``)."""
    pairs = _HeldOutPairs(split, names)
    return [leak for text in texts if (leak := pairs.find(text)) is not None]


def training_texts(kg: KnowledgeGraph, split: EdgeSplit, seed: int = 0) -> Iterator[str]:
    """One sentence per train edge, in train order, with a phrasing drawn by ``default_rng(seed)``.

    A sentence that names both ends of a held-out edge is left out (logged with a count): the same pair
    under another relation (``treats`` held out, ``indicated_for`` in train), the reverse edge, another
    entity of the same name, or a name inside a longer one would otherwise state or hint at a held-out fact.
    """
    if split.build_id != kg.manifest.get("build_id", ""):
        raise EdgeSplitMismatchError("(in memory)", f"made from KG build {split.build_id}, "
                                                    f"the KG is build {kg.manifest.get('build_id')}")
    names = entity_names(kg, split)
    pairs = _HeldOutPairs(split, names)
    sizes = np.array([len(PHRASINGS[r]) for r in split.relations])
    train = split.train
    variants = (np.random.default_rng(seed).random(len(train)) * sizes[train.relation]).astype(np.int64)
    dropped = 0
    for h, r, t, variant in zip(train.head.tolist(), train.relation.tolist(), train.tail.tolist(),
                                variants.tolist(), strict=True):
        text = verbalise(names[h], split.relations[r], names[t], variant)
        if pairs.find(text) is not None:
            dropped += 1
            continue
        yield text
    log.info("verbalised %d train edges, left out %d that name a held-out pair", len(train) - dropped, dropped)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pretrain.data", description="Build the held-out edge split.")
    parser.add_argument("--out", type=Path, required=True, help="directory for edge_split.npz and .json")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the built KG")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with KnowledgeGraph.open(args.data_dir) as kg:
        split = split_edges(kg, seed=args.seed)
        split.save(args.out)
    log.info("%d train and %d held-out edges written to %s", len(split.train), len(split.held_out), args.out)


if __name__ == "__main__":
    main()
