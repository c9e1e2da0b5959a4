"""The names table: every preferred name, synonym and lay synonym with its entity and type.

Entity linking matches text against this table. It is written by the build beside the store (sorted,
gzip with a fixed timestamp, so its checksum is reproducible) and checked against the manifest on open.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kg.vocab import EntityType

COLUMNS = ("name", "entity_id", "entity_type", "kind")
KINDS = ("name", "synonym", "lay")


@dataclass(frozen=True)
class NameEntry:
    name: str
    entity_id: str
    entity_type: EntityType
    kind: str  # "name" (preferred), "synonym", or "lay" (plain-language synonym)


class _Named(Protocol):
    id: str
    type: EntityType
    name: str
    synonyms: Iterable[str]
    lay_synonyms: Iterable[str]


def write_names(path: Path, entities: Iterable[_Named]) -> str:
    """Write the table; returns its sha256."""
    rows = set()
    for entity in entities:
        rows.add((entity.name, entity.id, entity.type.value, "name"))
        rows.update((s, entity.id, entity.type.value, "synonym") for s in entity.synonyms)
        rows.update((s, entity.id, entity.type.value, "lay") for s in entity.lay_synonyms)
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
    writer.writerow(COLUMNS)
    writer.writerows(sorted(rows, key=lambda r: (r[1], KINDS.index(r[3]), r[0])))
    data = gzip.compress(text.getvalue().encode(), mtime=0)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_names(path: Path) -> list[NameEntry]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        header = next(reader)
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: unexpected header {header}")
        types = {t.value: t for t in EntityType}
        return [NameEntry(name, eid, types[etype], kind) for name, eid, etype, kind in reader]
