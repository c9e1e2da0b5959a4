"""The trained generator's artefacts and evaluation helpers: adapter export, the build check the assistant relies on,
LM-pooled entity vectors and base-vs-trained perplexity on the tiny configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pretrain.export import ExportMismatchError, write_manifest
from pretrain.generator import ADAPTER_FILES, BUILD_COMMAND, save_adapter, trained_model_path
from pretrain.model import ModelConfig
from pretrain.prepare import prepare, read_manifest
from pretrain.train import CHECKPOINT, TrainConfig, train


@pytest.fixture(scope="module")
def prepared(kg, tmp_path_factory):
    from pretrain.tokens import load_tokenizer

    out = tmp_path_factory.mktemp("prepared")
    prepare(kg, out, load_tokenizer(), seed=0, n_passages=0)
    return out


@pytest.fixture(scope="module")
def lora_run(prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(data_dir=str(prepared), out_dir=str(out), max_steps=3, batch_size=2, block_size=32,
                         link_batch=4, negatives=2, warmup_steps=1, lr=5e-2, min_lr=5e-2, log_interval=1,
                         eval_interval=1000, checkpoint_interval=1000, progress=False, threads=1,
                         model=ModelConfig(tiny=True, trainable="lora", top_layers=1, kg_dim=16))
    train(config)
    return out / CHECKPOINT


def test_save_adapter_writes_only_the_small_adapter(lora_run, tmp_path):
    out = save_adapter(lora_run, tmp_path / "adapter")
    assert all((out / name).is_file() for name in ADAPTER_FILES)
    summary = json.loads((out / "training.json").read_text())
    assert summary["step"] == 3 and summary["config"]["model"]["trainable"] == "lora"
    from safetensors.torch import load_file

    weights = load_file(out / ADAPTER_FILES[0])
    assert weights and all("lora_" in name for name in weights)
    assert any(float(w.abs().sum()) > 0 for name, w in weights.items() if "lora_B" in name)  # trained, not init


def test_the_assistant_uses_the_base_model_when_no_adapter_is_committed(tmp_path):
    assert trained_model_path(tmp_path / "no-adapter", tmp_path / "built") is None


def test_a_committed_adapter_without_a_current_build_names_the_build_command(lora_run, tmp_path):
    adapter = save_adapter(lora_run, tmp_path / "adapter")
    built = tmp_path / "built"
    with pytest.raises(ExportMismatchError, match=BUILD_COMMAND):
        trained_model_path(adapter, built)
    built.mkdir()
    (built / "model.gguf").write_bytes(b"GGUF")
    write_manifest(built, ["model.gguf"], {"adapter_sha256": "another adapter", "gguf": "model.gguf"})
    with pytest.raises(ExportMismatchError, match="another adapter than the committed one"):
        trained_model_path(adapter, built)
    from pretrain.generator import adapter_digest

    write_manifest(built, ["model.gguf"], {"adapter_sha256": adapter_digest(adapter), "gguf": "model.gguf"})
    assert trained_model_path(adapter, built) == built / "model.gguf"


def test_entity_vectors_and_perplexity_base_vs_trained(lora_run, prepared):
    from pretrain.evaluate import entity_vectors, load_trained, perplexity

    model, config = load_trained(lora_run)
    with np.load(prepared / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    vectors = entity_vectors(model, names, lengths, batch_size=7)
    assert vectors.shape == (len(names), config.model.kg_dim)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(len(names)), atol=1e-5)
    # batching does not change a vector: row 3 alone equals row 3 in a batch
    alone = model.encode_entities(torch.from_numpy(names[3:4].astype(np.int64)),
                                  torch.from_numpy(lengths[3:4].astype(np.int64)))
    assert torch.allclose(alone[0], vectors[3], atol=1e-5)
    trained, base = perplexity(model, prepared, batches=2), perplexity(model, prepared, batches=2, base=True)
    assert trained != pytest.approx(base)  # the adapter changed the model
    assert read_manifest(prepared)["counts"]["lm_heldout_tokens"] > 0
