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
    """A built artefact cannot be used: its manifest is unreadable or lacks a key, a file differs from the
    manifest's checksum, the store will not open, or it was built by an incompatible version or from other
    inputs. The one error of every damaged artefact (the KG, the literature index, the name index, the exported
    generator); each artefact's subclass fills in its name and the command that rebuilds it."""

    def __init__(self, path: object, detail: str, artefact: str = "knowledge graph",
                 rebuild_command: str = "medkg kg build") -> None:
        self.path, self.detail, self.artefact, self.rebuild_command = path, detail, artefact, rebuild_command
        super().__init__(f"{artefact} at {path} cannot be used ({detail}): rebuild it with `{rebuild_command}`")


class BuildLockedError(KGError):
    """Another build holds the lock of the directory this build would write."""

    def __init__(self, data_dir: object, command: str, holder: str | None) -> None:
        self.data_dir, self.command, self.holder = data_dir, command, holder
        super().__init__(f"another `{command}` is writing to {data_dir} ({holder or 'holder unknown'}); wait for it "
                         "to finish, or build into another --data-dir")


class SourceFormatError(KGError):
    """A source file is missing or malformed; names the file and the line."""

    def __init__(self, path: object, line: int | None, detail: str) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {detail}")


class QuerySyntaxError(KGError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed SPARQL: {detail}")
