"""Reading source tables: locate a file in a source directory and yield validated rows.

A source directory has the layout of ``../shared/data`` (and of the committed ``bundle/``); each
file may be stored plain or gzip-compressed (``name`` or ``name.gz``). Rows come with their line
number, so that a malformed row is reported as ``file:line``.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kg.errors import SourceFormatError
from kg.vocab import Curation, EntityType, Relation

log = logging.getLogger(__name__)
csv.field_size_limit(1 << 24)


@dataclass(frozen=True)
class EntityRecord:
    """An entity as one source describes it; records with the same id are merged by the build."""

    id: str
    type: EntityType
    name: str
    source: str  # key into vocab.SOURCES
    synonyms: tuple[str, ...] = ()
    lay_synonyms: tuple[str, ...] = ()
    definition: str | None = None
    xrefs: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EdgeRecord:
    """One relation edge with its provenance, before it is checked against the entities."""

    subject: str
    relation: Relation
    object: str
    sources: tuple[str, ...]  # keys into vocab.SOURCES
    licence: str
    curation: Curation
    evidence: str | None = None
    frequency: float | None = None
    frequency_text: str | None = None


@dataclass
class SourceDir:
    """A directory of source tables; ``path(rel)`` finds ``rel`` or ``rel.gz`` or fails naming both."""

    root: Path
    used: dict[str, Path] = field(default_factory=dict)  # rel -> file actually read (for checksums)

    def path(self, rel: str) -> Path:
        for candidate in (self.root / rel, self.root / f"{rel}.gz"):
            if candidate.is_file():
                self.used[rel] = candidate
                return candidate
        raise SourceFormatError(self.root / rel, None,
                                "source file missing (neither it nor its .gz exists); "
                                "pass --source with a directory laid out like ../shared/data")

    def rows(self, rel: str, columns: tuple[str, ...], *, header: bool = True, quoted: bool = False,
             overflow: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        """Yield ``(line_number, row)``; the header must hold ``columns`` (or rows must have that many)."""
        yield from read_tsv(self.path(rel), columns, header=header, quoted=quoted, overflow=overflow)


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller's with


def _after_comments(handle: io.TextIOBase, skipped: list[int]) -> Iterator[str]:
    """Lines of ``handle`` without the leading ``#`` comment lines, whose count goes in ``skipped``."""
    leading = True
    for line in handle:
        if leading and line.startswith("#"):
            skipped[0] += 1
            continue
        leading = False
        yield line


def read_tsv(path: Path, columns: tuple[str, ...], *, header: bool = True, quoted: bool = False,
             overflow: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` of a tab-separated file; leading ``#`` comment lines are skipped.

    ``overflow`` names a free-text column that may itself contain a stray tab: a row with too many
    fields then has its extra fields joined back into that column (and a warning names the line).
    """
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    skipped = [0]
    try:
        with open_text(path) as handle:
            reader = csv.reader(_after_comments(handle, skipped), delimiter="\t", quoting=quoting)
            names = columns
            if header:
                first = next(reader, None)
                if first is None:
                    raise SourceFormatError(path, 1 + skipped[0], "empty file, expected a header row")
                missing = [c for c in columns if c not in first]
                if missing:
                    raise SourceFormatError(path, 1, f"header lacks column(s) {missing}; found {first}")
                names = tuple(first)
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                line += skipped[0]
                if overflow and len(row) > len(names):
                    at, extra = names.index(overflow), len(row) - len(names)
                    log.warning("%s:%d: %d stray tab(s) inside column %r", path, line, extra, overflow)
                    row = [*row[:at], " ".join(row[at:at + extra + 1]), *row[at + extra + 1:]]
                if len(row) != len(names):
                    raise SourceFormatError(path, line, f"expected {len(names)} tab-separated fields, "
                                                        f"found {len(row)}")
                yield line, dict(zip(names, row, strict=True))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as error:
        raise SourceFormatError(path, None, f"unreadable: {error}") from error
