"""Issue 20 (4, 7): a damaged artefact is an ``ArtefactMismatchError`` naming the artefact, what is wrong and the
command that rebuilds it, never a raw traceback; a second build into a directory whose lock is held fails at once,
before it reads a source.

Each test damages a private copy of a fixture build (the fixture KG, a literature index of the committed fixture
passages, a name index), as a disk, a partial copy or a hand edit would: a truncated or overwritten file, an edited
manifest. A build that would read its sources first is pointed at sources that do not exist: if it read them before
taking the lock, it would fail with another error than ``BuildLockedError``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HPO, fixture_config
from rdflib import Graph
from typer.testing import CliRunner

from assistant.cli import app
from assistant.embedding import FakeEmbedder
from assistant.linking_index import LinkingIndexMismatchError, build_name_index, open_name_index
from assistant.literature import IndexConfig, IndexMismatchError, LiteratureIndex, build_index, read_manifest
from kg.artefacts import STAMP_NAME, build_lock
from kg.build import build
from kg.errors import ArtefactMismatchError, BuildLockedError, KGError
from kg.store import KnowledgeGraph
from pretrain.generator import build_generator, generator_lock

PASSAGES = Path(__file__).parent / "fixtures" / "literature" / "passages.jsonl.gz"
KG_BUILD, INDEX_BUILD, LINK_BUILD = "medkg kg build", "medkg index build", "medkg link-build"


def private_copy(data_dir: Path, destination: Path) -> Path:
    """A data directory holding a plain copy of ``data_dir``'s current build, free to damage."""
    shutil.copytree((data_dir / "current").resolve(), destination / "builds" / "b")
    (destination / "current").symlink_to("builds/b")
    return destination


def edit_manifest(root: Path, edit) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwrite_middle(path: Path, keep_mtime: bool = False, at: tuple[float, ...] = (0.5,)) -> None:
    """64 zero bytes written over ``path`` in place (same size) at each fraction ``at`` of its length (the middle);
    its mtime set back if asked."""
    before = path.stat()
    with open(path, "r+b") as handle:
        for fraction in at:
            handle.seek(int(before.st_size * fraction))
            handle.write(bytes(64))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def largest_store_file(root: Path) -> Path:
    return max((root / "store").glob("*.sst"), key=lambda p: p.stat().st_size)


def assert_names(error: ArtefactMismatchError, root: Path, command: str, *details: str) -> None:
    message = str(error)
    assert isinstance(error, KGError)  # the CLI edge prints it as one line, `error: ...`
    assert str(root) in message and f"`{command}`" in message, message
    for detail in details:
        assert detail in message, message


# --- the KG ---------------------------------------------------------------------------------------

@pytest.fixture
def kg_copy(built_kg, tmp_path) -> Path:
    return private_copy(built_kg[0], tmp_path / "kg")


def test_truncated_kg_manifest(kg_copy):
    root = kg_copy / "current"
    truncate(root / "manifest.json")
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, "knowledge graph", "unreadable manifest.json")


def test_kg_manifest_without_files(kg_copy):
    root = kg_copy / "current"
    edit_manifest(root, lambda m: m.pop("files"))
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, "lacks 'files'")


def test_kg_manifest_that_is_not_an_object(kg_copy):
    (kg_copy / "current" / "manifest.json").write_text("[]")
    with pytest.raises(ArtefactMismatchError, match="holds a list"):
        KnowledgeGraph.open(kg_copy)


def test_truncated_store_file(kg_copy):
    root = kg_copy / "current"
    sst = largest_store_file(root)
    truncate(sst)
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, f"store/{sst.name}", "bytes, the manifest says")


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime-changed", "mtime-set-back"])
def test_store_file_overwritten_after_a_checked_open(kg_copy, keep_mtime):
    """A block overwritten in place, size kept, after an open that stamped the files as checked: RocksDB would
    only notice when the block is read; the open notices at once (mtime, or ctime when mtime is set back)."""
    KnowledgeGraph.open(kg_copy).close()  # hashes the copy and stamps it
    root = kg_copy / "current"
    sst = largest_store_file(root)
    overwrite_middle(sst, keep_mtime)
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, f"store/{sst.name}", "sha256 differs")


def test_checksum_mismatch_in_the_manifest(kg_copy):
    KnowledgeGraph.open(kg_copy).close()
    root = kg_copy / "current"
    name = f"store/{largest_store_file(root).name}"
    edit_manifest(root, lambda m: m["files"][name].update(sha256="0" * 64))
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, name, "sha256 differs")


def test_checked_files_are_hashed_once_then_stamped(kg_copy, caplog):
    """The bound of ``verify_files``: the copy (new inodes) is hashed at its first open, not at the next."""
    caplog.set_level(logging.INFO, logger="kg.artefacts")
    time.sleep(0.05)  # the stamp a clock tick after the copy, so no file is "racily clean"
    KnowledgeGraph.open(kg_copy).close()
    files = json.loads((kg_copy / "current" / "manifest.json").read_text())["files"]
    assert f"sha256 of {len(files)} of {len(files)} files checked" in caplog.text
    assert any(name.startswith("store/") for name in files)
    caplog.clear()
    KnowledgeGraph.open(kg_copy).close()
    assert "files checked" not in caplog.text
    (kg_copy / "current" / STAMP_NAME).unlink()  # no stamp: everything hashed again
    KnowledgeGraph.open(kg_copy).close()
    assert f"sha256 of {len(files)} of {len(files)} files checked" in caplog.text


def test_damaged_store_of_a_kg_built_before_store_checksums(kg_copy):
    """A KG whose manifest predates ``files``: its store is checked by opening it, and RocksDB's refusal is
    the named error."""
    root = kg_copy / "current"
    edit_manifest(root, lambda m: [m.pop("files"), m.pop("manifest_version")])
    KnowledgeGraph.open(kg_copy).close()
    truncate(largest_store_file(root))
    with pytest.raises(ArtefactMismatchError) as caught:
        KnowledgeGraph.open(kg_copy)
    assert_names(caught.value, root, KG_BUILD, "the store will not open", "Corruption")


def test_blocks_damaged_unseen_fail_when_read(built_kg, tmp_path):
    """Blocks overwritten where no check at open looks (a pre-``files`` KG, whose store is only opened), one store
    file at a time: whether RocksDB notices at open or only when a query reads the block, it is the named error,
    never RocksDB's RuntimeError, and some damage is only noticed by a read (SPARQL or ``entity``)."""
    noticed = []
    for number, sst in enumerate(sorted((built_kg[0] / "current" / "store").glob("*.sst"))):
        copy = private_copy(built_kg[0], tmp_path / f"kg{number}")
        root = copy / "current"
        edit_manifest(root, lambda m: [m.pop("files"), m.pop("manifest_version")])
        overwrite_middle(root / "store" / sst.name, at=tuple(i / 10 for i in range(1, 9)))
        stage = "open"
        try:
            with KnowledgeGraph.open(copy) as kg:
                stage = "read"
                for query in ("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", "SELECT ?s ?t WHERE { ?s a ?t }",
                              "SELECT ?s ?o WHERE { ?s rdfs:label ?o }"):
                    kg.sparql(query)
                kg.entity("DOID:9352")
            stage = "not noticed"
        except ArtefactMismatchError as error:
            assert_names(error, root, KG_BUILD, "the store will")
        noticed.append(stage)
    assert "read" in noticed, noticed


# --- the literature index -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(IndexConfig(passages=PASSAGES, data_dir=data_dir, embedding_cache=None), FakeEmbedder(), None)
    return data_dir


@pytest.fixture
def index_copy(index_dir, tmp_path) -> Path:
    return private_copy(index_dir, tmp_path / "index")


def test_truncated_index_manifest(index_copy):
    root = (index_copy / "current").resolve()
    truncate(root / "manifest.json")
    for reader in (lambda: LiteratureIndex.open(FakeEmbedder(), index_copy), lambda: read_manifest(index_copy)):
        with pytest.raises(IndexMismatchError) as caught:
            reader()
        assert isinstance(caught.value, ArtefactMismatchError)
        assert_names(caught.value, root, INDEX_BUILD, "literature index", "unreadable manifest.json")


def test_index_manifest_without_files(index_copy):
    root = (index_copy / "current").resolve()
    edit_manifest(root, lambda m: m.pop("files"))
    with pytest.raises(ArtefactMismatchError) as caught:
        LiteratureIndex.open(FakeEmbedder(), index_copy)
    assert_names(caught.value, root, INDEX_BUILD, "lacks 'files'")


def test_truncated_and_overwritten_index_files(index_copy):
    root = (index_copy / "current").resolve()
    LiteratureIndex.open(FakeEmbedder(), index_copy)  # stamps the copy
    overwrite_middle(root / "dense.faiss", keep_mtime=True)
    with pytest.raises(ArtefactMismatchError) as caught:
        LiteratureIndex.open(FakeEmbedder(), index_copy)
    assert_names(caught.value, root, INDEX_BUILD, "dense.faiss", "sha256 differs")
    truncate(root / "bm25" / "vocab.index.json")
    with pytest.raises(ArtefactMismatchError) as caught:
        LiteratureIndex.open(FakeEmbedder(), index_copy)
    assert_names(caught.value, root, INDEX_BUILD, "bm25/vocab.index.json", "bytes, the manifest says")


# --- the entity-linking name index ----------------------------------------------------------------

@pytest.fixture(scope="module")
def name_index_dir(kg, tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("linking")
    build_name_index(kg, FakeEmbedder(), data_dir, cache=None)
    return data_dir


@pytest.fixture
def name_index_copy(name_index_dir, tmp_path) -> Path:
    return private_copy(name_index_dir, tmp_path / "linking")


def test_truncated_name_index_manifest(kg, name_index_copy):
    root = name_index_copy / "current"
    truncate(root / "manifest.json")
    with pytest.raises(LinkingIndexMismatchError) as caught:
        open_name_index(kg, FakeEmbedder(), name_index_copy)
    assert isinstance(caught.value, ArtefactMismatchError)
    assert_names(caught.value, root, LINK_BUILD, "entity-linking name index", "unreadable manifest.json")


def test_name_index_manifest_without_a_key(kg, name_index_copy):
    root = name_index_copy / "current"
    edit_manifest(root, lambda m: m.pop("rows_sha256"))
    with pytest.raises(ArtefactMismatchError) as caught:
        open_name_index(kg, FakeEmbedder(), name_index_copy)
    assert_names(caught.value, root, LINK_BUILD, "rows_sha256")


def test_overwritten_and_truncated_name_index_files(kg, name_index_copy):
    root = name_index_copy / "current"
    assert set(json.loads((root / "manifest.json").read_text())["files"]) == {"names.faiss", "rows.npy"}
    open_name_index(kg, FakeEmbedder(), name_index_copy)
    truncate(root / "rows.npy")
    with pytest.raises(ArtefactMismatchError, match=r"rows\.npy .*bytes, the manifest says.*`medkg link-build`"):
        open_name_index(kg, FakeEmbedder(), name_index_copy)
    overwrite_middle(root / "names.faiss")  # checked first
    with pytest.raises(ArtefactMismatchError) as caught:
        open_name_index(kg, FakeEmbedder(), name_index_copy)
    assert_names(caught.value, root, LINK_BUILD, "names.faiss", "sha256 differs")


# --- the build lock, taken before any source is read ----------------------------------------------

def refused_quickly(run, data_dir: Path, command: str) -> BuildLockedError:
    """Run a build while this process holds ``data_dir``'s lock; it must fail on the lock within a second."""
    started = time.perf_counter()
    with pytest.raises(BuildLockedError) as caught:
        run()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"refused after {elapsed:.2f} s"
    message = str(caught.value)
    assert f"another `{command}` is writing to {data_dir}" in message and f"pid {os.getpid()}" in message, message
    return caught.value


def test_second_kg_build_fails_at_once_without_reading_sources(tmp_path):
    missing = tmp_path / "no-sources"  # read first, it would be a SourceFormatError
    with build_lock(tmp_path / "kg", KG_BUILD):
        refused_quickly(lambda: build(fixture_config(tmp_path / "kg", source=missing, hpo_dir=missing)),
                        tmp_path / "kg", KG_BUILD)
    assert not (tmp_path / "kg" / "builds").exists()


def test_second_kg_build_from_the_cli_while_another_process_builds(tmp_path):
    data_dir = tmp_path / "kg"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom kg.artefacts import build_lock\n"
         f"with build_lock({str(data_dir)!r}, {KG_BUILD!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["kg", "build", "--source", str(tmp_path / "none"), "--hpo", str(HPO),
                                          "--data-dir", str(data_dir)])
        assert time.perf_counter() - started < 1.0
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(result.exception, BuildLockedError), result.output
    assert f"pid {holder.pid} on " in str(result.exception) and str(data_dir) in str(result.exception)


def test_second_index_build_fails_at_once_without_reading_the_corpus(tmp_path):
    data_dir = tmp_path / "index"
    config = IndexConfig(passages=tmp_path / "none.jsonl.gz", data_dir=data_dir, embedding_cache=None)
    with build_lock(data_dir, INDEX_BUILD):
        refused_quickly(lambda: build_index(config, FakeEmbedder(), None), data_dir, INDEX_BUILD)
        # the CLI takes it before it opens the KG (here missing: opened first, it would be a StoreMissingError)
        cli = ["index", "build", "--source", str(tmp_path), "--data-dir", str(data_dir), "--kg-data-dir",
               str(tmp_path / "no-kg")]
        refused_quickly(lambda: _raise(CliRunner().invoke(app, cli)), data_dir, INDEX_BUILD)


def test_second_name_index_build_fails_at_once_without_reading_names(tmp_path):
    data_dir = tmp_path / "linking"
    unread = KnowledgeGraph(Graph(), {"build_id": "x"}, root=tmp_path / "no-kg")  # names() would raise
    with build_lock(data_dir, LINK_BUILD):
        refused_quickly(lambda: build_name_index(unread, FakeEmbedder(), data_dir, cache=None), data_dir, LINK_BUILD)
        cli = ["link-build", "--data-dir", str(data_dir), "--kg-data-dir", str(tmp_path / "no-kg")]
        refused_quickly(lambda: _raise(CliRunner().invoke(app, cli)), data_dir, LINK_BUILD)


def test_second_generator_build_fails_at_once_without_reading_the_adapter(tmp_path):
    out_dir = tmp_path / "generator"  # no adapter in tmp_path/none: read first, it would be a FileNotFoundError
    with build_lock(out_dir, "medkg pretrain build", generator_lock(out_dir)):
        refused_quickly(lambda: build_generator(tmp_path / "none", out_dir), out_dir, "medkg pretrain build")


def test_the_lock_is_free_again_after_a_refused_build(tmp_path, built_kg):
    data_dir = tmp_path / "kg"
    with build_lock(data_dir, KG_BUILD):
        with pytest.raises(BuildLockedError):
            build(fixture_config(data_dir))
    assert build(fixture_config(data_dir))["counts"] == built_kg[1]["counts"]


def _raise(result) -> None:
    if result.exception is not None:
        raise result.exception


def test_truncated_generator_manifest(tmp_path):
    from pretrain.export import ExportMismatchError, check_manifest, write_manifest
    from pretrain.generator import BUILD_COMMAND

    (tmp_path / "model.gguf").write_bytes(b"GGUF" * 256)
    truncate(write_manifest(tmp_path, ["model.gguf"], {"gguf": "model.gguf"}))
    with pytest.raises(ExportMismatchError) as caught:
        check_manifest(tmp_path, BUILD_COMMAND)
    assert isinstance(caught.value, ArtefactMismatchError)
    assert_names(caught.value, tmp_path, BUILD_COMMAND, "exported model", "unreadable manifest.json")


def test_a_lock_held_on_another_directory_is_refused(tmp_path):
    with build_lock(tmp_path / "elsewhere", INDEX_BUILD) as lock:
        with pytest.raises(ValueError, match="elsewhere"):
            build_index(IndexConfig(passages=PASSAGES, data_dir=tmp_path / "index", embedding_cache=None),
                        FakeEmbedder(), None, lock)
