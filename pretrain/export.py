"""Export a fine-tuned SmolLM2 for the assistant's two local runtimes, with a checked manifest.

Training starts from, and ends with, a plain transformers ``LlamaForCausalLM`` in fp32 (LoRA merged) whose
config is the base model's. From it this module writes:

* a GGUF for llama.cpp (``write_gguf``): every metadata key of the base GGUF (architecture, hyper-parameters,
  tokenizer, chat template) copied, the file type set, and the weights under llama.cpp's tensor names, in
  ``f32``, ``f16`` or ``q8_0`` (2-D weights only; norms stay f32). transformers reads the same file back.
* a transformers directory (``save_transformers``): safetensors + tokenizer, for further training.
* ``manifest.json`` (``write_manifest`` / ``check_manifest``): sha256 and size of every file plus the training
  config and the base model's checksum, so a changed or partial export fails on load with the command to rebuild.

``load_base_model`` gives the starting point: the shipped Q4_1 GGUF dequantised by transformers, rebuilt as a
fresh ``LlamaForCausalLM`` (a GGUF-loaded model carries a ``quantization_config`` and cannot be saved as is).

llama.cpp stores q_proj/k_proj with the rows of each head reordered from the halves layout of HF's rotary
embedding to interleaved pairs (``LlamaModel.permute`` in llama.cpp's ``convert_hf_to_gguf.py``); transformers'
GGUF loader undoes it, so ``write_gguf`` applies it (``permute_qk``).

Measured on SmolLM2-135M (2 CPU cores): ``load_base_model`` takes ~30 s (gguf parsing in transformers), a
GGUF export ~8 s (f16 or q8_0), giving 271 MB (f16) or 145 MB (q8_0) against the shipped Q4_1's 98 MB. In llama.cpp
both decode the same 20 greedy tokens as the shipped Q4_1 for a chat prompt, with a next-token KL from it of at
most 0.008 nats (f16) and 0.03 (q8_0); see tests/test_pretrain_export.py.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kg.artefacts import sha256_file
from kg.errors import ArtefactMismatchError, KGError

log = logging.getLogger(__name__)

GGUF_DTYPES = ("f32", "f16", "q8_0")
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
#: base GGUF keys not copied: the writer's own (header counts, architecture) and those describing quantisation
SKIPPED_KEYS = ("general.architecture", "general.file_type", "general.quantization_version")


class ExportMismatchError(ArtefactMismatchError):
    """An exported model directory does not match its manifest: the manifest or a file it lists is missing,
    unreadable or changed."""

    def __init__(self, path: object, detail: str, rebuild_command: str) -> None:
        super().__init__(path, detail, "exported model", rebuild_command)


class BaseModelMismatchError(KGError):
    """The model to export does not have the base GGUF's architecture (tensor names or shapes differ)."""


# --- the starting point ---------------------------------------------------------------------------

def load_base_model(path: Path | None = None):
    """``(LlamaForCausalLM, tokenizer)``: the GGUF at ``path`` (default: the shipped SmolLM2 Q4_1) dequantised by
    transformers to fp32, then copied into a fresh ``LlamaForCausalLM(config)`` that can be trained and saved.
    Its logits equal the GGUF-loaded model's; the embedding stays tied to the LM head as in the original."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.generation import model_path

    path = Path(path) if path else model_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return rebuild_llama(loaded), tokenizer


def rebuild_llama(loaded):
    """A fresh fp32 ``LlamaForCausalLM`` with ``loaded``'s config (less its GGUF ``quantization_config``) and a
    copy of its weights; tied embeddings stay tied."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    settings["dtype"] = "float32"
    model = LlamaForCausalLM(LlamaConfig(**settings))
    with torch.no_grad():
        model.load_state_dict({k: v.float() for k, v in loaded.state_dict().items()}, strict=True)
    if model.config.tie_word_embeddings and model.lm_head.weight is not model.model.embed_tokens.weight:
        raise AssertionError("the rebuilt model lost its tied embeddings")
    return model.eval()


# --- GGUF ------------------------------------------------------------------------------------------

def permute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order for a q_proj (``n_head`` = attention heads) or k_proj (``n_head`` = KV heads)
    weight ``(n_head * head_dim, hidden)``: within each head, rows ``[x_0..x_{d/2-1}, y_0..y_{d/2-1}]`` (HF's
    rotate-half pairs) become ``[x_0, y_0, x_1, y_1, ...]`` (GGML's adjacent pairs). Same as ``LlamaModel.permute``
    in llama.cpp's convert_hf_to_gguf.py; transformers' GGUF loader applies the inverse."""
    head_dim = weight.shape[0] // n_head
    return (weight.reshape(n_head, 2, head_dim // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape))


def write_gguf(model, out_path: Path, base_gguf: Path | None = None,
               dtype: Literal["f32", "f16", "q8_0"] = "f16") -> Path:
    """Write ``model`` (a ``LlamaForCausalLM`` with the base's architecture) as a GGUF at ``out_path``.

    Metadata: every key of ``base_gguf`` (default: the shipped SmolLM2) except ``SKIPPED_KEYS``;
    ``general.file_type`` is set from ``dtype``. Tensors: the base's names, shapes and set (``output.weight``
    only if the base has one, else the LM head must be tied to the embedding); 2-D weights in ``dtype`` (a
    ``q8_0`` row not a multiple of 32 falls back to f16, as llama.cpp's converter does), 1-D norms in f32.
    The file is written beside ``out_path`` and renamed into place, so a failed export leaves no partial GGUF."""
    import gguf

    from assistant.generation import model_path

    if dtype not in GGUF_DTYPES:
        raise ValueError(f"dtype must be one of {GGUF_DTYPES}, not {dtype!r}")
    base_gguf = Path(base_gguf) if base_gguf else model_path()
    out_path = Path(out_path)
    reader = gguf.GGUFReader(base_gguf)
    arch = reader.get_field("general.architecture").contents()
    if arch != "llama":
        raise BaseModelMismatchError(f"{base_gguf} is a {arch!r} model; only llama GGUFs can be written")
    tensors = dict(_gguf_tensors(model, gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA,
                                                                  model.config.num_hidden_layers)))
    base_shapes = {t.name: tuple(int(n) for n in reversed(t.shape)) for t in reader.tensors}
    if "output.weight" not in base_shapes:
        head = tensors.pop("output.weight", None)
        if head is not None and not np.array_equal(head, tensors["token_embd.weight"]):
            raise BaseModelMismatchError(f"{base_gguf} ties the LM head to the embedding (no output.weight), but "
                                         "the model's lm_head differs from embed_tokens: keep them tied in training")
    _check_tensors(tensors, base_shapes, base_gguf)

    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]
    writer = gguf.GGUFWriter(None, arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in SKIPPED_KEYS:
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name in (t.name for t in reader.tensors):  # the base's order
        data, raw_type = _encode(tensors[name], dtype)
        writer.add_tensor(name, data, raw_dtype=raw_type)

    partial = out_path.with_name(out_path.name + ".partial")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer.write_header_to_file(partial)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(partial, out_path)
    log.info("wrote %s (%s, %.1f MB)", out_path, dtype, out_path.stat().st_size / 1e6)
    return out_path


def _gguf_tensors(model, name_map) -> Iterable[tuple[str, np.ndarray]]:
    """``(gguf name, fp32 array in the GGUF's row order)`` for every tensor in ``model``'s state dict."""
    config = model.config
    for hf_name, tensor in model.state_dict().items():
        name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise BaseModelMismatchError(f"no llama.cpp tensor name for {hf_name!r}: is this a LlamaForCausalLM?")
        array = tensor.detach().to("cpu").float().numpy()
        if name.endswith(".attn_q.weight"):
            array = permute_qk(array, config.num_attention_heads)
        elif name.endswith(".attn_k.weight"):
            array = permute_qk(array, config.num_key_value_heads)
        yield name, np.ascontiguousarray(array)


def _check_tensors(tensors: Mapping[str, np.ndarray], base_shapes: Mapping[str, tuple[int, ...]],
                   base_gguf: Path) -> None:
    if set(tensors) != set(base_shapes):
        missing, extra = sorted(set(base_shapes) - set(tensors)), sorted(set(tensors) - set(base_shapes))
        raise BaseModelMismatchError(f"the model's tensors are not {base_gguf}'s: missing {missing[:5]}, "
                                     f"not in the base {extra[:5]}")
    for name, array in tensors.items():
        if array.shape != base_shapes[name]:
            raise BaseModelMismatchError(f"{name} is {array.shape} in the model but {base_shapes[name]} in "
                                         f"{base_gguf}: export a model with the base's config")


def _encode(array: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    """``(data, raw GGML type or None)`` for ``GGUFWriter.add_tensor``: 1-D tensors f32, others ``dtype``."""
    import gguf

    if array.ndim == 1 or dtype == "f32":
        return array.astype(np.float32), None
    q8 = gguf.GGMLQuantizationType.Q8_0
    if dtype == "q8_0" and array.shape[-1] % gguf.GGML_QUANT_SIZES[q8][0] == 0:
        return gguf.quants.quantize(array, q8), q8
    return array.astype(np.float16), None


# --- transformers ----------------------------------------------------------------------------------

def save_transformers(model, tokenizer, out_dir: Path) -> list[Path]:
    """``save_pretrained`` (safetensors) of ``model`` and ``tokenizer`` into ``out_dir``, which must be new or
    empty (so no stale shard of an earlier save is mixed in), loadable with
    ``AutoModelForCausalLM.from_pretrained(out_dir)``; returns the files written, for the manifest."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: save the transformers model into a new directory")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


# --- manifest --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export directory, POSIX separators
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    files: tuple[ExportedFile, ...]
    extra: Mapping[str, Any]  # what the caller recorded: training config, base model checksum, ...


def write_manifest(out_dir: Path, files: Iterable[Path | str], extra: Mapping[str, Any]) -> Path:
    """Write ``out_dir/manifest.json`` listing size and sha256 of each of ``files`` (paths inside ``out_dir``,
    absolute or relative to it) and ``extra`` (JSON-serialisable); returns its path."""
    out_dir = Path(out_dir)
    records = []
    for file in files:
        path = Path(file) if Path(file).is_absolute() else out_dir / file
        if not path.resolve().is_relative_to(out_dir.resolve()):
            raise ValueError(f"{file} is not inside {out_dir}: a manifest lists only the export's own files")
        relative = path.resolve().relative_to(out_dir.resolve()).as_posix()
        if relative == MANIFEST_NAME:
            continue
        records.append({"path": relative, "size": path.stat().st_size, "sha256": sha256_file(path)})
    records.sort(key=lambda r: r["path"])
    manifest = {"manifest_version": MANIFEST_VERSION, "files": records, "extra": dict(extra)}
    target = out_dir / MANIFEST_NAME
    target.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return target


def check_manifest(out_dir: Path, rebuild_command: str) -> ExportManifest:
    """Check every file listed in ``out_dir/manifest.json`` against its size and sha256. Raises
    ``ExportMismatchError`` naming the first missing or mismatched file and ``rebuild_command``."""
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ExportMismatchError(out_dir, f"no {MANIFEST_NAME}", rebuild_command)
    try:
        manifest = json.loads(manifest_path.read_text())
        version, extra = manifest["manifest_version"], manifest["extra"]
        files = tuple(ExportedFile(r["path"], r["size"], r["sha256"]) for r in manifest["files"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportMismatchError(out_dir, f"unreadable {MANIFEST_NAME}: {exc!r}", rebuild_command) from exc
    if version != MANIFEST_VERSION:
        raise ExportMismatchError(out_dir, f"manifest version {version}, expected {MANIFEST_VERSION}",
                                  rebuild_command)
    for file in files:
        path = out_dir / file.path
        if not path.is_file():
            raise ExportMismatchError(out_dir, f"{file.path} is missing", rebuild_command)
        if path.stat().st_size != file.size:
            raise ExportMismatchError(out_dir, f"{file.path} is {path.stat().st_size} bytes, the manifest says "
                                      f"{file.size}", rebuild_command)
        if sha256_file(path) != file.sha256:
            raise ExportMismatchError(out_dir, f"{file.path} has changed (sha256 differs)", rebuild_command)
    return ExportManifest(files, extra)
