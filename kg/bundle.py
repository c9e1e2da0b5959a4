"""``medkg kg bundle``: copy exactly the source tables the build reads into the committed ``bundle/``.

Each table is stored gzip-compressed with a fixed timestamp (reproducible bytes), beside the source
licences and a ``MANIFEST.json`` of checksums, so a fresh clone builds the KG without ``../shared``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

from kg.sources import SOURCE_FILES
from kg.tables import SourceDir

LICENCE_FILES = ("disease_ontology/LICENSE", "hetionet/LICENSES-by-source.md", "hetionet/sources/sider4_LICENSE.md",
                 "hetionet/sources/drugbank_README.md", "hetionet/sources/indications_README.md", "README.md")


def make_bundle(source: Path, destination: Path) -> dict:
    """Write the bundle; returns its manifest (file -> sha256 and size)."""
    src = SourceDir(Path(source))
    destination.mkdir(parents=True, exist_ok=True)
    files = {}
    for rel in SOURCE_FILES:
        path = src.path(rel)
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        target = destination / (rel if rel.endswith(".gz") else f"{rel}.gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
        files[str(target.relative_to(destination))] = {
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(), "bytes": target.stat().st_size,
            "uncompressed_sha256": hashlib.sha256(raw).hexdigest()}
    for rel in LICENCE_FILES:
        if (Path(source) / rel).is_file():
            target = destination / "licences" / rel.replace("/", "__")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(source) / rel, target)
    manifest = {"from": str(source), "files": files}
    (destination / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
