"""Named errors of the KG layer. The CLI turns them into messages; library code re-raises them."""

from __future__ import annotations


class KGError(Exception):
    """Base class for the KG layer's expected failures."""


class UnknownEntityError(KGError, KeyError):
    def __init__(self, query: str, close_matches: list[tuple[str, str]] | None = None) -> None:
        self.query = query
        self.close_matches = close_matches or []
        hint = ""
        if self.close_matches:
            hint = "; close matches: " + ", ".join(f"{name} ({eid})" for eid, name in self.close_matches)
        super().__init__(f"unknown entity {query!r}{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class UnknownTripleError(KGError, KeyError):
    def __init__(self, triple_id: str) -> None:
        super().__init__(f"no triple with id {triple_id!r} in this KG")

    def __str__(self) -> str:
        return self.args[0]


class StoreMissingError(KGError):
    def __init__(self, path: object) -> None:
        super().__init__(f"no knowledge graph at {path}: build it with `medkg kg build`")


class ArtefactMismatchError(KGError):
    """The store and its manifest disagree, or were built by an incompatible version."""

    def __init__(self, path: object, detail: str) -> None:
        super().__init__(f"knowledge graph at {path} does not match its manifest ({detail}): "
                         "rebuild it with `medkg kg build`")


class SourceFormatError(KGError):
    """A source file is missing or malformed; names the file and the line."""

    def __init__(self, path: object, line: int | None, detail: str) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {detail}")


class QuerySyntaxError(KGError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed SPARQL: {detail}")
