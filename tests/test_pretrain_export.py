"""Exporting a fine-tuned SmolLM2 (``pretrain/export.py``): GGUF for llama.cpp, safetensors for transformers, manifest.

Fast: a tiny random Llama written as GGUF next to a tiny hand-made base GGUF and read back by transformers' own
GGUF loader (which undoes llama.cpp's q/k row permutation independently of ours); the manifest check.
Slow: the real round trip, shipped Q4_1 → ``load_base_model`` → ``write_gguf`` (f16, q8_0) → llama.cpp and
transformers, compared with the shipped file run by llama.cpp.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from kg.errors import KGError
from pretrain.export import (
    MANIFEST_NAME,
    BaseModelMismatchError,
    ExportMismatchError,
    check_manifest,
    permute_qk,
    write_gguf,
    write_manifest,
)

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REBUILD = "python -m pretrain.train --out runs/x"


# --- the q/k permutation ---------------------------------------------------------------------------

def test_permute_qk_interleaves_the_rotary_halves_of_each_head():
    rows = np.arange(8, dtype=np.float32)[:, None]  # 2 heads of head_dim 4: halves [0 1 | 2 3], [4 5 | 6 7]
    assert permute_qk(rows, n_head=2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


@pytest.mark.parametrize("n_head, n_kv_head", [(9, 9), (9, 3)])
def test_transformers_gguf_loader_undoes_permute_qk(n_head, n_kv_head):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weight = np.random.default_rng(0).normal(size=(n_kv_head * 64, 576)).astype(np.float32)
    permuted = permute_qk(weight, n_kv_head)
    assert not np.array_equal(permuted, weight)
    processor = LlamaTensorProcessor(config={"num_attention_heads": n_head, "num_key_value_heads": n_kv_head})
    name = "blk.0.attn_q.weight" if n_head == n_kv_head else "blk.0.attn_k.weight"
    assert np.array_equal(processor.process(permuted, name).weights, weight)


# --- a tiny Llama through GGUF ---------------------------------------------------------------------

def tiny_llama(seed: int = 0, **overrides):
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = dict(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True,
                    rope_theta=100000.0, rms_norm_eps=1e-5)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**(settings | overrides))).eval()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A base GGUF for ``tiny_llama()``: llama metadata, a 64-token vocabulary, a chat template, zero weights of the
    right names and shapes, Q4_1 file type (tied: no output.weight)."""
    path = tmp_path_factory.mktemp("tiny") / "base.gguf"
    model = tiny_llama()
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_name("tiny")
    writer.add_block_count(2)
    writer.add_context_length(128)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(96)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(16)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(64)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(64)])
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    for hf_name, tensor in model.state_dict().items():
        if hf_name != "lm_head.weight":
            writer.add_tensor(names.get_name(hf_name, try_suffixes=(".weight",)), np.zeros(tuple(tensor.shape),
                                                                                             np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def load_gguf_with_transformers(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def gguf_fields(path) -> dict:
    reader = gguf.GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def test_tiny_f32_gguf_reads_back_in_transformers_with_the_same_weights(tiny_base, tmp_path):
    model = tiny_llama(seed=1)
    out = write_gguf(model, tmp_path / "tiny-f32.gguf", base_gguf=tiny_base, dtype="f32")
    back = load_gguf_with_transformers(out)
    assert back.config.tie_word_embeddings
    for (name, weight), (back_name, back_weight) in zip(model.state_dict().items(), back.state_dict().items(),
                                                        strict=True):
        assert name == back_name and torch.equal(weight, back_weight), name
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, back(ids).logits)
    assert not list(tmp_path.glob("*.partial"))


def test_tiny_gguf_copies_the_base_metadata_and_sets_the_file_type(tiny_base, tmp_path):
    out = write_gguf(tiny_llama(), tmp_path / "tiny-q8.gguf", base_gguf=tiny_base, dtype="q8_0")
    base, written = gguf_fields(tiny_base), gguf_fields(out)
    assert base.pop("general.file_type") == gguf.LlamaFileType.MOSTLY_Q4_1
    assert written.pop("general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0
    assert written.pop("general.quantization_version") == gguf.GGML_QUANT_VERSION
    assert written == base
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(out).tensors}
    assert {name for name, kind in types.items() if kind == gguf.GGMLQuantizationType.F32} == {
        "output_norm.weight", *(f"blk.{i}.{n}.weight" for i in range(2) for n in ("attn_norm", "ffn_norm"))}
    assert types["token_embd.weight"] == types["blk.1.ffn_down.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert "output.weight" not in types


def test_tiny_q8_0_weights_within_quantisation_error(tiny_base, tmp_path):
    model = tiny_llama(seed=2)
    back = load_gguf_with_transformers(write_gguf(model, tmp_path / "q8.gguf", base_gguf=tiny_base, dtype="q8_0"))
    for (name, weight), back_weight in zip(model.state_dict().items(), back.state_dict().values(), strict=True):
        # Q8_0: blocks of 32 integers times a scale d = max|w| / 127 stored in f16, so the error is at most
        # d / 2 (rounding) + 127 * d * 2**-11 (the scale's rounding); max|w| over the block <= over the tensor
        d = weight.abs().max() / 127
        assert (weight - back_weight).abs().max() <= d * (0.5 + 127 / 2048) + 1e-7, name


def test_a_model_of_another_shape_is_refused(tiny_base, tmp_path):
    with pytest.raises(BaseModelMismatchError, match="ffn_gate"):
        write_gguf(tiny_llama(intermediate_size=128), tmp_path / "x.gguf", base_gguf=tiny_base)
    assert not list(tmp_path.iterdir())


def test_an_untied_lm_head_is_refused_when_the_base_ties_it(tiny_base, tmp_path):
    model = tiny_llama(tie_word_embeddings=False)
    with pytest.raises(BaseModelMismatchError, match="tied"):
        write_gguf(model, tmp_path / "x.gguf", base_gguf=tiny_base)


def test_an_unknown_dtype_is_refused(tiny_base, tmp_path):
    with pytest.raises(ValueError, match="q8_0"):
        write_gguf(tiny_llama(), tmp_path / "x.gguf", base_gguf=tiny_base, dtype="q4_0")


# --- manifest --------------------------------------------------------------------------------------

@pytest.fixture
def export_dir(tmp_path):
    (tmp_path / "model.gguf").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "llama"}')
    write_manifest(tmp_path, ["model.gguf", tmp_path / "hf" / "config.json"],
                   {"base_sha256": "ab" * 32, "training": {"lr": 1e-4, "steps": 10}})
    return tmp_path


def test_manifest_lists_sizes_and_checksums_and_keeps_extra(export_dir):
    manifest = check_manifest(export_dir, REBUILD)
    assert [(f.path, f.size) for f in manifest.files] == [("hf/config.json", 23), ("model.gguf", 1024)]
    assert manifest.extra == {"base_sha256": "ab" * 32, "training": {"lr": 1e-4, "steps": 10}}


def test_manifest_check_catches_one_changed_byte(export_dir):
    data = bytearray((export_dir / "model.gguf").read_bytes())
    data[500] ^= 1
    (export_dir / "model.gguf").write_bytes(data)
    with pytest.raises(ExportMismatchError, match=r"model\.gguf has changed.*python -m pretrain\.train") as caught:
        check_manifest(export_dir, REBUILD)
    assert isinstance(caught.value, KGError)


def test_manifest_check_catches_a_truncated_or_missing_file(export_dir):
    (export_dir / "model.gguf").write_bytes(b"x")
    with pytest.raises(ExportMismatchError, match="model.gguf is 1 bytes, the manifest says 1024"):
        check_manifest(export_dir, REBUILD)
    (export_dir / "hf" / "config.json").unlink()
    with pytest.raises(ExportMismatchError, match="hf/config.json is missing"):
        check_manifest(export_dir, REBUILD)


def test_manifest_refuses_a_file_outside_the_export(export_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.bin"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match="not inside"):
        write_manifest(export_dir, [outside], {})


def test_manifest_check_without_a_manifest_names_the_command(export_dir):
    (export_dir / MANIFEST_NAME).unlink()
    with pytest.raises(ExportMismatchError, match=f"no {MANIFEST_NAME}.*`{REBUILD}`"):
        check_manifest(export_dir, REBUILD)


# --- the real model (slow) -------------------------------------------------------------------------

CHAT = [{"role": "system", "content": "You are a helpful medical assistant."},
        {"role": "user", "content": "What are common symptoms of type 2 diabetes?"}]
GREEDY_TOKENS = 20
needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed")


@pytest.fixture(scope="module")
def shipped():
    """The wheel's GGUF; the set-up installs it, so its absence fails with the error that names the fix."""
    from assistant.generation import model_path

    return model_path()


@pytest.fixture(scope="module")
def base(shipped):
    from pretrain.export import load_base_model

    return load_base_model(shipped)


@pytest.fixture(scope="module")
def exports(base, shipped, tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("export")
    return {dtype: write_gguf(base[0], directory / f"smollm2-{dtype}.gguf", base_gguf=shipped, dtype=dtype)
            for dtype in ("f16", "q8_0")}


@pytest.fixture(scope="module")
def prompt_ids(base) -> list[int]:
    return base[1].apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]


def llama_cpp_greedy(path, prompt_ids: list[int], n: int = GREEDY_TOKENS) -> tuple[list[int], np.ndarray]:
    """(the ``n`` greedy tokens, logits ``(n, vocab)`` that chose them) from llama.cpp on 2 threads."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    llm.eval(prompt_ids)
    tokens = []
    for _ in range(n):
        tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval(tokens[-1:])
    return tokens, np.array(llm.scores[len(prompt_ids) - 1:llm.n_tokens - 1])


@pytest.fixture(scope="module")
def shipped_greedy(shipped, prompt_ids) -> tuple[list[int], np.ndarray]:
    return llama_cpp_greedy(shipped, prompt_ids)


def kl_divergence(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    """KL(p || q) per row, in nats."""
    log_p = p_logits - np.logaddexp.reduce(p_logits, axis=-1, keepdims=True)
    log_q = q_logits - np.logaddexp.reduce(q_logits, axis=-1, keepdims=True)
    return (np.exp(log_p) * (log_p - log_q)).sum(-1)


@pytest.mark.slow
def test_load_base_model_gives_the_gguf_models_logits(base, shipped, prompt_ids):
    from transformers import LlamaForCausalLM

    model, _ = base
    assert type(model) is LlamaForCausalLM and not hasattr(model.config, "quantization_config")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert all(p.dtype == torch.float32 for p in model.parameters())
    reference = load_gguf_with_transformers(shipped)
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


@pytest.mark.slow
@needs_llama_cpp
@pytest.mark.parametrize("dtype, max_kl", [("f16", 0.05), ("q8_0", 0.1)])
def test_exported_gguf_decodes_like_the_shipped_one_in_llama_cpp(exports, shipped_greedy, prompt_ids, dtype, max_kl):
    shipped_tokens, shipped_logits = shipped_greedy
    tokens, logits = llama_cpp_greedy(exports[dtype], prompt_ids)
    assert tokens == shipped_tokens
    kl = kl_divergence(shipped_logits, logits)
    # measured: f16 KL max 0.008 / mean 0.002, max |Δlogit| 1.2; q8_0 KL max 0.03 / mean 0.007, max |Δlogit| 1.8
    print(f"{dtype}: KL max {kl.max():.4f} mean {kl.mean():.4f}, max |logit diff| "
          f"{np.abs(shipped_logits - logits).max():.3f}")
    assert kl.max() < max_kl


@pytest.mark.slow
def test_exported_gguf_keeps_the_shipped_metadata(exports, shipped):
    shipped_fields = gguf_fields(shipped)
    assert shipped_fields.pop("general.file_type") == gguf.LlamaFileType.MOSTLY_Q4_1
    for dtype, file_type in (("f16", gguf.LlamaFileType.MOSTLY_F16), ("q8_0", gguf.LlamaFileType.MOSTLY_Q8_0)):
        fields = gguf_fields(exports[dtype])
        assert fields.pop("general.file_type") == file_type
        assert fields == shipped_fields


@pytest.mark.slow
def test_exported_f16_gguf_reads_back_in_transformers(base, exports):
    back = load_gguf_with_transformers(exports["f16"])
    assert back.config.tie_word_embeddings
    for (name, weight), back_weight in zip(base[0].state_dict().items(), back.state_dict().values(), strict=True):
        torch.testing.assert_close(back_weight, weight, rtol=1e-3, atol=1e-6, msg=name)


@pytest.mark.slow
def test_save_transformers_round_trip_gives_the_same_logits(base, prompt_ids, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pretrain.export import save_transformers

    model, tokenizer = base
    files = save_transformers(model, tokenizer, tmp_path)
    assert tmp_path / "model.safetensors" in files
    back = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert AutoTokenizer.from_pretrained(tmp_path).apply_chat_template(
        CHAT, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"] == prompt_ids
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, back(ids).logits)
    with pytest.raises(FileExistsError, match="not empty"):
        save_transformers(model, tokenizer, tmp_path)
    write_manifest(tmp_path, files, {"base": "shipped"})
    assert {f.path for f in check_manifest(tmp_path, REBUILD).files} == {p.name for p in files}
