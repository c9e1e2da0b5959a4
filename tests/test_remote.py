"""A KG served by a SPARQL 1.1 endpoint answers the same neighbourhood as the local store."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kg.errors import KGError
from kg.store import KnowledgeGraph
from kg.subgraph import neighbourhood, paths
from kg.vocab import Relation

pytestmark = pytest.mark.integration


def _oxigraph_cli() -> str:
    found = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
    if not Path(found).is_file():
        pytest.fail("the `oxigraph` server (PyPI package oxigraph, a dev dependency) is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(kg, tmp_path_factory):
    work = tmp_path_factory.mktemp("oxigraph")
    export = work / "kg.nt"
    kg.export(export, "nt")
    cli = _oxigraph_cli()
    subprocess.run([cli, "load", "--location", str(work / "db"), "--file", str(export)], check=True,
                   capture_output=True, timeout=120)
    port = _free_port()
    server = subprocess.Popen([cli, "serve-read-only", "--location", str(work / "db"), "--bind", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}?query=ASK%7B%7D", timeout=1).read()  # noqa: S310 - loopback only
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the local Oxigraph server did not start")
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.parametrize(("seed", "relations"), [
    ("DRUGBANK:DB00331", [Relation.CAUSES_SIDE_EFFECT]),
    ("DOID:9352", None),
    ("DOID:6364", [Relation.TREATS, Relation.HAS_PHENOTYPE]),
    ("HP:0000822", None),
])
def test_remote_endpoint_gives_the_same_subgraph(kg, endpoint, seed, relations):
    remote = KnowledgeGraph.remote(endpoint)
    try:
        assert not remote.has_adjacency  # the remote KG ranks with SPARQL, the local one with arrays
        assert neighbourhood(remote, [seed], relations, budget=12) == neighbourhood(kg, [seed], relations, budget=12)
        assert remote.entity(seed) == kg.entity(seed)
    finally:
        remote.close()


def test_paths_on_a_remote_kg_is_a_clear_error(endpoint):
    with KnowledgeGraph.remote(endpoint) as remote, pytest.raises(KGError, match="locally built KG"):
        paths(remote, "DRUGBANK:DB00331", "DOID:9352")
