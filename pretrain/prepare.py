"""Prepare every array training reads, ahead of training (nanoGPT's ``prepare.py``): training only reads them.

    python -m pretrain.prepare --out data/pretrain [--data-dir data/kg] [--seed 0] [--passages 6000]
                               [--instructions data/pretrain/instructions] [--tiny]

Writes into ``--out``:

* ``edge_split.npz`` / ``.json``: the held-out link-prediction split (``pretrain.data``);
* ``lm_train.bin``: uint16 token ids of the causal-LM corpus, documents separated by the end-of-text token:
  one verbalised sentence per train edge (``training_texts``), entity definitions, literature passages. A
  definition or passage that names both ends of a held-out edge is left out (``pretrain.data.leaks``), so no
  held-out edge appears in any training text;
* ``lm_heldout.bin``: the held-out edges verbalised (first phrasing), for perplexity;
* ``entities.npz``: ``names`` ``(n, L)`` int32 token ids of each entity's preferred name, right-padded, and
  ``lengths`` ``(n,)``, aligned with the split's entities;
* ``definitions.npz``: ``tokens`` ``(n, 64)`` and ``lengths`` ``(n,)`` of each entity's ``"<name>: <definition>"``,
  the corpus's text, cut at ``MAX_DEFINITION_TOKENS``; length 0 where the entity has no definition or its
  definition was left out of the corpus for naming a held-out pair (stage 1b's KEPLER-style entity states);
* ``sft_{train,dev}.npz`` when stage-2 examples exist (``pretrain.instructions``): ``tokens`` (flat int32),
  ``offsets`` ``(k + 1,)`` and ``prompt_lengths`` ``(k,)``: the loss is taken on the answer tokens only;
* ``prepared.json``: counts, sha256 of every file, the KG build, the seed and the tokenizer's model file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kg.artefacts import sha256_file
from kg.errors import KGError
from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph
from pretrain.data import EdgeSplit, _HeldOutPairs, entity_names, split_edges, training_texts, verbalise

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "prepared.json"
BUILD_COMMAND = "python -m pretrain.prepare --out DIR"
MAX_NAME_TOKENS = 16
MAX_DEFINITION_TOKENS = 64
LITERATURE = Path(__file__).resolve().parent.parent / "bundle" / "literature" / "passages.jsonl.gz"


class PreparedDataError(KGError):
    """Prepared arrays are missing or do not match their manifest."""

    def __init__(self, path: object, detail: str) -> None:
        super().__init__(f"prepared training data at {path} cannot be used ({detail}): rebuild it with "
                         f"`{BUILD_COMMAND}`")


def write_tokens(path: Path, documents: Iterable[str], tokenizer, eot: int) -> int:
    """Tokenise ``documents`` in batches and write them as one uint16 stream, each followed by ``eot``."""
    count = 0
    with open(path, "wb") as handle:
        batch: list[str] = []

        def flush() -> int:
            ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
            flat = np.fromiter((i for doc in ids for i in (*doc, eot)), dtype=np.uint16)
            handle.write(flat.tobytes())
            batch.clear()
            return len(flat)

        for text in documents:
            batch.append(text)
            if len(batch) == 2048:
                count += flush()
        if batch:
            count += flush()
    return count


def definitions(kg: KnowledgeGraph, split: EdgeSplit, names: Sequence[str]) -> list[str | None]:
    """``"<name>: <definition>"`` of every entity, aligned with the split's entities; None where it has none."""
    found = []
    for entity_id, name in zip(split.entities.tolist(), names, strict=True):
        definition = kg.entity(entity_id).definition
        found.append(f"{name}: {definition}" if definition else None)
    return found


def passages(limit: int, seed: int, path: Path = LITERATURE) -> list[str]:
    """``limit`` literature passages drawn reproducibly (all when ``limit`` < 0)."""
    if limit == 0:
        return []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    if 0 <= limit < len(texts):
        chosen = np.random.default_rng(seed).choice(len(texts), limit, replace=False)
        texts = [texts[i] for i in sorted(chosen.tolist())]
    return texts


def without_leaks(texts: Iterable[str], pairs: _HeldOutPairs) -> list[str]:
    return [text for text in texts if pairs.find(text) is None]


def entity_tokens(names: Sequence[str], tokenizer, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(names ``(n, L)`` int32 right-padded with ``pad``, lengths ``(n,)``), names cut at ``MAX_NAME_TOKENS``."""
    return token_rows(names, tokenizer, pad, MAX_NAME_TOKENS, empty=[pad])


def token_rows(texts: Sequence[str | None], tokenizer, pad: int, width: int,
               empty: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(``(n, width)`` int32 token ids right-padded with ``pad``, lengths ``(n,)``), each text cut at ``width``
    tokens; a None or empty text gets the tokens ``empty`` (by default none: length 0)."""
    ids = tokenizer([text or "" for text in texts], add_special_tokens=False)["input_ids"]
    out = np.full((len(ids), width), pad, dtype=np.int32)
    lengths = np.zeros(len(ids), dtype=np.int32)
    for row, tokens in enumerate(ids):
        tokens = tokens[:width] or list(empty or [])
        out[row, :len(tokens)] = tokens
        lengths[row] = len(tokens)
    return out, lengths


def sft_arrays(path: Path, tokenizer, max_tokens: int) -> dict[str, np.ndarray]:
    """Stage-2 examples of one JSONL file as flat token arrays; examples longer than ``max_tokens`` are skipped."""
    from pretrain.instructions import chat_text

    tokens, offsets, prompt_lengths = [], [0], []
    skipped = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            example = json.loads(line)
            prompt, full = chat_text(tokenizer, example["messages"], example["target"])
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            if full_ids[:len(prompt_ids)] != prompt_ids:
                raise ValueError(f"the prompt does not tokenise as a prefix of the example in {path}")
            if len(full_ids) > max_tokens:
                skipped += 1
                continue
            tokens.extend(full_ids)
            offsets.append(len(tokens))
            prompt_lengths.append(len(prompt_ids))
    if skipped:
        log.info("%s: skipped %d examples longer than %d tokens", path.name, skipped, max_tokens)
    return {"tokens": np.array(tokens, dtype=np.int32), "offsets": np.array(offsets, dtype=np.int64),
            "prompt_lengths": np.array(prompt_lengths, dtype=np.int32)}


def add_sft(out: Path, tokenizer, instructions: Path | None, counts: dict, max_tokens: int) -> list[str]:
    """Write ``sft_{train,dev}.npz`` from ``instructions/instructions_{train,dev}.jsonl`` where they exist; returns
    the files written and adds their counts to ``counts``."""
    files = []
    for part in ("train", "dev"):
        source = Path(instructions) / f"instructions_{part}.jsonl" if instructions else None
        if source is not None and source.is_file():
            arrays = sft_arrays(source, tokenizer, max_tokens)
            np.savez(out / f"sft_{part}.npz", **arrays)
            counts[f"sft_{part}_examples"] = len(arrays["prompt_lengths"])
            counts[f"sft_{part}_tokens"] = len(arrays["tokens"])
            files.append(f"sft_{part}.npz")
    return files


def update_sft(out: Path, tokenizer, instructions: Path, max_tokens: int = 1024) -> dict:
    """Re-tokenise only the stage-2 examples of already prepared data (the other arrays stay as they are)."""
    manifest = read_manifest(out, check=False)
    manifest["files"].update({name: sha256_file(out / name)
                              for name in add_sft(out, tokenizer, instructions, manifest["counts"], max_tokens)})
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def prepare(kg: KnowledgeGraph, out: Path, tokenizer, seed: int = 0, n_passages: int = 6000,
            instructions: Path | None = None, sft_max_tokens: int = 1024) -> dict:
    """Write every array into ``out``; returns the manifest (also written as ``prepared.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    split = split_edges(kg, seed=seed)
    split.save(out)
    names = entity_names(kg, split)
    pairs = _HeldOutPairs(split, names)
    eot = tokenizer.eos_token_id
    sentences = list(training_texts(kg, split, seed=seed))
    defined = definitions(kg, split, names)
    usable = [text if text is not None and pairs.find(text) is None else None for text in defined]
    kept_definitions = [text for text in usable if text is not None]
    n_defined = sum(text is not None for text in defined)
    literature = passages(n_passages, seed)
    kept_passages = without_leaks(literature, pairs)
    log.info("corpus: %d sentences, %d/%d definitions and %d/%d passages without a held-out pair",
             len(sentences), len(kept_definitions), n_defined, len(kept_passages), len(literature))
    counts = {"sentences": len(sentences), "definitions": len(kept_definitions),
              "definitions_left_out": n_defined - len(kept_definitions),
              "passages": len(kept_passages),
              "passages_left_out": len(literature) - len(kept_passages)}
    counts["lm_train_tokens"] = write_tokens(out / "lm_train.bin", [*sentences, *kept_definitions, *kept_passages],
                                             tokenizer, eot)
    held = split.held_out
    held_texts = [verbalise(names[h], split.relations[r], names[t], 0)
                  for h, r, t in zip(held.head.tolist(), held.relation.tolist(), held.tail.tolist(), strict=True)]
    counts["lm_heldout_tokens"] = write_tokens(out / "lm_heldout.bin", held_texts, tokenizer, eot)
    name_ids, lengths = entity_tokens(names, tokenizer, eot)
    np.savez(out / "entities.npz", names=name_ids, lengths=lengths)
    definition_ids, definition_lengths = token_rows(usable, tokenizer, eot, MAX_DEFINITION_TOKENS)
    np.savez(out / "definitions.npz", tokens=definition_ids, lengths=definition_lengths)
    counts["entities"] = len(names)
    files = ["edge_split.npz", "lm_train.bin", "lm_heldout.bin", "entities.npz", "definitions.npz"]
    files += add_sft(out, tokenizer, instructions, counts, sft_max_tokens)
    manifest = {"format_version": FORMAT_VERSION, "seed": seed, "kg_build_id": kg.manifest.get("build_id", ""),
                "tokenizer": getattr(tokenizer, "name_or_path", ""), "vocab_size": len(tokenizer),
                "counts": counts, "files": {name: sha256_file(out / name) for name in files},
                "seconds": round(time.perf_counter() - started, 1)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(directory: Path, check: bool = True) -> dict:
    """The manifest of prepared data, each file's checksum verified when ``check``."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise PreparedDataError(directory, f"{MANIFEST} missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # truncated or overwritten: JSONDecodeError, UnicodeDecodeError
        raise PreparedDataError(directory, f"unreadable {MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise PreparedDataError(directory, f"{MANIFEST} is not an object with a 'files' mapping")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PreparedDataError(directory, f"format version {manifest.get('format_version')}, "
                                           f"this code reads {FORMAT_VERSION}")
    for name, digest in manifest["files"].items() if check else ():
        if not (Path(directory) / name).is_file() or sha256_file(Path(directory) / name) != digest:
            raise PreparedDataError(directory, f"{name} is missing or differs from the manifest")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    from pretrain.tokens import load_tokenizer

    parser = argparse.ArgumentParser(prog="python -m pretrain.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the built KG")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passages", type=int, default=6000, help="literature passages in the corpus (-1: all)")
    parser.add_argument("--instructions", type=Path, default=None, help="stage-2 examples (instructions_*.jsonl)")
    parser.add_argument("--sft-only", action="store_true", help="only (re)write the stage-2 arrays of --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.sft_only:
        if args.instructions is None:
            parser.error("--sft-only needs --instructions")
        manifest = update_sft(args.out, load_tokenizer(), args.instructions)
        log.info("stage-2 arrays: %s", {k: v for k, v in manifest["counts"].items() if k.startswith("sft")})
        return
    with KnowledgeGraph.open(args.data_dir) as kg:
        manifest = prepare(kg, args.out, load_tokenizer(), args.seed, args.passages, args.instructions)
    log.info("prepared in %.0f s: %s", manifest["seconds"], json.dumps(manifest["counts"]))


if __name__ == "__main__":
    main()
