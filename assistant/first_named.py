"""What clinicians name first, as the team wrote it down: a readable table of (topic, kind of question) -> items.

The usefulness set's tune half and the blind answer batches scored at first sight each list, for common
questions, the 2-6 items a good clinician names first ("what helps a migraine?" -> sumatriptan, ibuprofen, …),
every id checked against the KG. Across questions the same common topics come back (of batch 14's 57 such
questions, 52 asked about a topic an earlier batch or the tune half had already labelled), and what a clinician
names first for them does not change from one wording to the next. The relevance model
(``assistant.relevance``) reads this table as one feature, ``named_first``: the candidate is listed for the
seed (or a record of the same concept) and the kind of question. Topics the table lacks rank by the other
features alone; ``medkg relevance fit`` reports both kinds of topic apart.

``assistant/resources/first_named.tsv`` is written by ``medkg relevance fit`` from the rows it trains on (never
the usefulness set's held-out half); each line says which rows listed the item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kg.errors import ArtefactMismatchError
from kg.vocab import Relation

TABLE_PATH = Path(__file__).resolve().parent / "resources" / "first_named.tsv"
HEADER = ("topic", "question_kind", "item", "rows")
REBUILD_COMMAND = "medkg relevance fit"


class LabelledRow(Protocol):
    id: str
    expected_entity_ids: tuple[str, ...]
    expected_relation: Relation | None
    expected_first: tuple[str, ...]


@dataclass(frozen=True)
class FirstNamed:
    """(topic id, question kind) -> {item id: ids of the rows that named it first}."""
    entries: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[LabelledRow], kind_of: dict[Relation, str]) -> FirstNamed:
        """The items each labelled row names first, under each of its asked entities that is not itself one
        of the items (a yes/no question's drug, not the side effect it asks about)."""
        entries: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            kind = kind_of.get(Relation(row.expected_relation)) if row.expected_relation else None
            if not row.expected_first or kind is None:
                continue
            for topic in row.expected_entity_ids:
                if topic in row.expected_first:
                    continue
                for item in row.expected_first:
                    entries[(topic, kind)][item].append(row.id)
        return cls({key: {item: tuple(ids) for item, ids in items.items()} for key, items in entries.items()})

    def shares(self, topics: Iterable[str], kind: str) -> dict[str, float]:
        """Each listed item's share of the topic's labelled rows that name it first (its best over the topics):
        what every row names (hypothyroidism on amiodarone, 12 of 13) over what one or two rows add (nausea)."""
        out: dict[str, float] = {}
        for topic in topics:
            items = self.entries.get((topic, kind), {})
            rows = len({row for ids in items.values() for row in ids}) or 1
            for item, ids in items.items():
                out[item] = max(out.get(item, 0.0), min(1.0, len(ids) / rows))
        return out

    def __len__(self) -> int:
        return len(self.entries)

    def save(self, path: Path = TABLE_PATH) -> None:
        lines = ["# What clinicians name first per topic and kind of question, from the team's labelled rows (the "
                 "usefulness set's tune half and the scored blind batches). Written by `medkg relevance fit`.",
                 "\t".join(HEADER)]
        for (topic, kind), items in sorted(self.entries.items()):
            lines += [f"{topic}\t{kind}\t{item}\t{','.join(ids)}" for item, ids in sorted(items.items())]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = TABLE_PATH) -> FirstNamed:
        entries: dict[tuple[str, str], dict[str, tuple[str, ...]]] = defaultdict(dict)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ArtefactMismatchError(path, f"the first-named table will not read: {error}", "first-named table",
                                        REBUILD_COMMAND) from None
        body = [line for line in lines if line and not line.startswith("#")]
        if not body or tuple(body[0].split("\t")) != HEADER:
            raise ArtefactMismatchError(path, f"the header is not {' '.join(HEADER)}", "first-named table",
                                        REBUILD_COMMAND)
        for number, line in enumerate(body[1:], start=2):
            cells = line.split("\t")
            if len(cells) != len(HEADER) or not all(cells[:3]):
                raise ArtefactMismatchError(path, f"line {number} does not have {len(HEADER)} cells",
                                            "first-named table", REBUILD_COMMAND)
            topic, kind, item, ids = cells
            entries[(topic, kind)][item] = tuple(i for i in ids.split(",") if i)
        return cls(dict(entries))
