"""Prepared arrays, the config parser, and the training loop on the tiny configuration (fixture KG, real tokenizer,
a 2-block random Llama): every trainable parameter changes, checkpoints round-trip and resume exactly, DDP runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pretrain.config import parse_config
from pretrain.data import EdgeSplit, entity_names, leaks
from pretrain.model import ModelConfig
from pretrain.prepare import MANIFEST, PreparedDataError, prepare, read_manifest
from pretrain.train import CHECKPOINT, TrainConfig, build_model, load_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tokenizer():
    from pretrain.tokens import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="module")
def prepared(kg, tokenizer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    prepare(kg, out, tokenizer, seed=0, n_passages=0)
    return out


def tiny(prepared: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(data_dir=str(prepared), out_dir=str(out), max_steps=2, batch_size=2, block_size=32,
                    link_batch=4, negatives=2, warmup_steps=1, lr=1e-2, min_lr=1e-2, log_interval=1,
                    eval_interval=1000, checkpoint_interval=1000, progress=False, threads=1,
                    model=ModelConfig(tiny=True, trainable="full", kg_dim=16))
    settings.update(overrides)
    return TrainConfig(**settings)


def test_prepared_corpus_names_no_held_out_pair(kg, prepared, tokenizer):
    manifest = read_manifest(prepared)
    split = EdgeSplit.load(prepared, kg)
    tokens = np.fromfile(prepared / "lm_train.bin", dtype=np.uint16)
    assert manifest["counts"]["lm_train_tokens"] == len(tokens) > 0
    documents = tokenizer.decode(tokens.tolist()).split(tokenizer.eos_token)
    assert len(documents) - 1 == manifest["counts"]["sentences"] + manifest["counts"]["definitions"]
    assert leaks(documents, split, entity_names(kg, split)) == []
    with np.load(prepared / "entities.npz") as arrays:
        assert arrays["names"].shape == (len(split.entities), 16)
        first = tokenizer.decode(arrays["names"][0, :arrays["lengths"][0]].tolist())
    assert first == kg.name(split.entities[0])
    with np.load(prepared / "definitions.npz") as arrays:  # the corpus's definitions, per entity, for stage 1b
        texts = [tokenizer.decode(row[:n].tolist()) for row, n in zip(arrays["tokens"], arrays["lengths"], strict=True)]
    assert sum(map(bool, texts)) == manifest["counts"]["definitions"] > 0
    corpus, names = set(documents), entity_names(kg, split)
    for entity, name, text in zip(split.entities.tolist(), names, texts, strict=True):
        definition = kg.entity(entity).definition
        full = f"{name}: {definition}"
        if text:
            assert definition and full in corpus and full.startswith(text)
        elif definition:  # left out of the corpus and of the array: it names both ends of a held-out edge
            assert leaks([full], split, names) and full not in corpus


def test_a_changed_prepared_file_names_the_command(prepared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    with open(copy / "lm_heldout.bin", "ab") as handle:
        handle.write(b"\0\0")
    with pytest.raises(PreparedDataError, match="python -m pretrain.prepare"):
        read_manifest(copy)


@pytest.mark.parametrize("damage", [lambda text: text[:len(text) // 2], lambda text: "[]", lambda text: "{}"])
def test_a_damaged_prepared_manifest_names_the_command(prepared, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    manifest = copy / MANIFEST
    manifest.write_text(damage(manifest.read_text()))
    with pytest.raises(PreparedDataError, match="python -m pretrain.prepare"):
        read_manifest(copy)


def test_config_flags_override_defaults_and_unknown_keys_fail(tmp_path):
    (tmp_path / "run.toml").write_text('max_steps = 7\n[model]\nlora_rank = 4\n')
    config = parse_config(TrainConfig, ["--config", str(tmp_path / "run.toml"), "--lr=0.5", "--resume",
                                        "--model.interaction", "transe"])
    assert (config.max_steps, config.lr, config.resume) == (7, 0.5, True)
    assert (config.model.lora_rank, config.model.interaction) == (4, "transe")
    with pytest.raises(ValueError, match="unknown config key mdoel"):
        parse_config(TrainConfig, ["--mdoel.lora_rank=4"])
    with pytest.raises(ValueError, match="interaction"):
        parse_config(TrainConfig, ["--model.interaction=rotate"])


@pytest.mark.parametrize("trainable", ["full", "lora", "top"])
def test_two_steps_change_every_trainable_parameter(prepared, tmp_path, trainable):
    config = tiny(prepared, tmp_path, model=ModelConfig(tiny=True, trainable=trainable, top_layers=1, kg_dim=16))
    model = build_model(config, 12, read_manifest(prepared)["vocab_size"])
    before = {name: p.detach().clone() for name, p in model.trainable_parameters()}
    assert before
    if trainable != "full":  # the bottom block is frozen
        assert not any(name.startswith(("lm.model.layers.0.", "lm.base_model.model.model.layers.0."))
                       and "lora" not in name for name in before)
    last = train(config)
    assert {"lm_loss", "link_loss", "rel_loss"} <= set(last)
    after = load_checkpoint(tmp_path / CHECKPOINT)["model"]
    unchanged = [name for name, value in before.items() if torch.equal(value, after[name])]
    assert unchanged == []


def test_resume_continues_exactly_where_the_checkpoint_stopped(prepared, tmp_path):
    straight = train(tiny(prepared, tmp_path / "a", max_steps=4))
    train(tiny(prepared, tmp_path / "b", max_steps=2))
    resumed = train(tiny(prepared, tmp_path / "b", max_steps=4, resume=True))
    assert resumed["step"] == straight["step"] == 4
    assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-5)
    a, b = (load_checkpoint(tmp_path / part / CHECKPOINT) for part in ("a", "b"))
    assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])
    assert a["entities"] == b["entities"] and len(a["relations"]) == 12
    assert a["config"]["model"]["tiny"] is True


def test_stop_after_ends_a_session_at_a_checkpoint_that_resumes(prepared, tmp_path):
    straight = train(tiny(prepared, tmp_path / "a", max_steps=4))
    session = train(tiny(prepared, tmp_path / "b", max_steps=4, stop_after=3))
    assert session["step"] == load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 3
    resumed = train(tiny(prepared, tmp_path / "b", max_steps=4, stop_after=3, resume=True))
    assert resumed["step"] == 4
    assert resumed["loss"] == pytest.approx(straight["loss"], rel=1e-5)


def test_kg_heads_take_their_own_learning_rate(prepared, tmp_path):
    train(tiny(prepared, tmp_path, kg_lr_scale=10.0, lr=1e-3, min_lr=1e-3))
    groups = load_checkpoint(tmp_path / CHECKPOINT)["optimizer"]["param_groups"]
    assert [(g["scale"], g["lr"]) for g in groups] == [(1.0, 1e-3), (10.0, pytest.approx(1e-2))]
    assert len(groups[1]["params"]) == 6  # projection weight and bias, relations, classifier weight and bias, scale
    assert len(groups[1]["params"]) + len(groups[0]["params"]) == len(load_checkpoint(tmp_path / CHECKPOINT)["model"])


def test_a_checkpoint_from_before_kg_lr_scale_resumes(prepared, tmp_path):
    train(tiny(prepared, tmp_path, max_steps=4, stop_after=2))
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    for group in checkpoint["optimizer"]["param_groups"]:
        del group["scale"]  # as written before the option existed
    torch.save(checkpoint, tmp_path / CHECKPOINT)
    assert train(tiny(prepared, tmp_path, max_steps=4, resume=True))["step"] == 4


def test_entity_state_cache_is_reused_and_rebuilt_when_it_disagrees(prepared, tmp_path, caplog):
    from pretrain.model import cached_entity_states, frozen_entity_states

    config = tiny(prepared, tmp_path, model=ModelConfig(tiny=True, trainable="lora", top_layers=1, kg_dim=16))
    model = build_model(config, 12, read_manifest(prepared)["vocab_size"]).eval()
    with np.load(prepared / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    expected = frozen_entity_states(model, names, lengths).numpy()
    first = cached_entity_states(model, names, lengths, tmp_path)
    path = tmp_path / "frozen_states_1.npy"
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    stamp = path.stat().st_mtime_ns
    np.testing.assert_array_equal(cached_entity_states(model, names, lengths, tmp_path), first)
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
    np.save(path, np.zeros_like(expected))  # stale: another model's states
    rebuilt = cached_entity_states(model, names, lengths, tmp_path)
    assert "recomputing" in caplog.text
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("trainable", ["lora", "top"])
def test_cached_frozen_states_give_the_same_entity_vectors(prepared, trainable):
    from pretrain.model import frozen_entity_states

    config = tiny(prepared, Path("unused"), model=ModelConfig(tiny=True, trainable=trainable, top_layers=1, kg_dim=16))
    model = build_model(config, 12, read_manifest(prepared)["vocab_size"]).eval()
    assert model.frozen_blocks == 1
    with np.load(prepared / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    frozen = frozen_entity_states(model, names, lengths, batch_size=7)
    rows = torch.arange(0, len(names), 3)
    ids, n = torch.from_numpy(names.astype(np.int64))[rows], torch.from_numpy(lengths.astype(np.int64))[rows]
    with torch.no_grad():
        torch.testing.assert_close(model.encode_entities(ids, n, frozen[rows]), model.encode_entities(ids, n),
                                   rtol=1e-4, atol=1e-5)


def test_link_batches_mask_the_answer_and_entities_of_the_wrong_type(prepared):
    from pretrain.batches import LinkBatches

    split = EdgeSplit.load(prepared)
    with np.load(prepared / "entities.npz") as arrays:
        batches = LinkBatches(split, arrays["names"], arrays["lengths"], 6, 2, torch.Generator().manual_seed(0))
    batch = next(batches)
    entities, p = batch["entities"], len(batch["relation"])
    for end, answer in (("head", batch["head"]), ("tail", batch["tail"])):
        ok = batch[f"{end}_ok"]
        assert ok.shape == (p, len(entities)) and not ok[torch.arange(p), answer].any()
        for i, r in enumerate(batch["relation"].tolist()):
            seen = set(batches.candidates[(r, end)].tolist())
            allowed = {int(e) for e, flag in zip(entities, ok[i], strict=True) if flag}
            assert allowed == {int(e) for e in entities if int(e) in seen} - {int(entities[answer[i]])}


def test_checkpoint_weights_load_into_a_fresh_model(prepared, tmp_path):
    from pretrain.train import load_trainable

    config = tiny(prepared, tmp_path)
    train(config)
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    fresh = build_model(config, 12, read_manifest(prepared)["vocab_size"])
    load_trainable(fresh, checkpoint["model"])
    for name, p in fresh.trainable_parameters():
        assert torch.equal(p, checkpoint["model"][name])
    with pytest.raises(ValueError, match="same model config"):
        load_trainable(build_model(replace(config, model=replace(config.model, trainable="lora")), 12,
                                   read_manifest(prepared)["vocab_size"]), checkpoint["model"])


def test_torchrun_two_processes_gloo(prepared, tmp_path):
    """DDP on CPU: two processes, gradients all-reduced, rank 0 writes the checkpoint."""
    torchrun = Path(sys.executable).with_name("torchrun")
    args = [str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "pretrain.train",
            f"--data_dir={prepared}", f"--out_dir={tmp_path}", "--max_steps=2", "--batch_size=2", "--block_size=32",
            "--link_batch=4", "--negatives=2", "--log_interval=1", "--progress=false", "--threads=1",
            "--model.tiny=true", "--model.trainable=full", "--model.kg_dim=16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT)
    assert checkpoint["step"] == 2
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == [1, 2]  # rank 0 alone logs


# --- stage 1b: the link-prediction head fitted on the LM's pooled entity states ---------------------------------


@pytest.fixture(scope="module")
def lora_checkpoint(prepared, tmp_path_factory) -> Path:
    """A tiny LoRA stage-1 checkpoint whose adapter is no longer zero (2 steps at a high learning rate)."""
    out = tmp_path_factory.mktemp("lora")
    train(tiny(prepared, out, model=ModelConfig(tiny=True, trainable="lora", top_layers=1, kg_dim=16)))
    return out / CHECKPOINT


def head_config(prepared: Path, checkpoint: Path, out: Path, **overrides):
    from pretrain.kg_head import HeadConfig

    settings = dict(checkpoint=str(checkpoint), data_dir=str(prepared), out=str(out), hidden=32, kg_dim=16,
                    epochs=2, batch_size=8, negatives=16, lr=1e-2, threads=1, progress=False)
    return HeadConfig(**(settings | overrides))


def test_pooled_states_are_what_the_stage1_model_projects(prepared, lora_checkpoint):
    import torch.nn.functional as F

    from pretrain.evaluate import load_trained
    from pretrain.kg_head import pool_entities
    from pretrain.model import frozen_entity_states

    model, _ = load_trained(lora_checkpoint)
    with np.load(prepared / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    pooled = pool_entities(model, names, lengths, frozen_entity_states(model, names, lengths).numpy(), batch_size=5)
    np.testing.assert_allclose(pool_entities(model, names, lengths, None), pooled, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        projected = F.normalize(model.entity_projection(torch.from_numpy(pooled)), dim=-1)
        encoded = model.encode_entities(torch.from_numpy(names.astype(np.int64)),
                                        torch.from_numpy(lengths.astype(np.int64)))
    torch.testing.assert_close(projected, encoded, rtol=1e-4, atol=1e-5)
    base = pool_entities(model, names, lengths, None, base=True)  # the control: adapter off
    assert not np.allclose(base, pooled, atol=1e-4)


def test_fitted_head_learns_resumes_exactly_and_refuses_other_states(prepared, lora_checkpoint, tmp_path):
    from pretrain.kg_head import entity_states, fit_head, fitted_head_scorer, load_head
    from pretrain.linkpred import evaluate

    long = fit_head(head_config(prepared, lora_checkpoint, tmp_path / "long.pt", epochs=15))
    history = torch.load(tmp_path / "long.pt", weights_only=False)["history"]
    assert long["epoch"] == 15 and history[-1]["loss"] < 0.8 * history[0]["loss"]

    straight = tmp_path / "straight.pt"
    fit_head(head_config(prepared, lora_checkpoint, straight))
    session = tmp_path / "session.pt"
    fit_head(head_config(prepared, lora_checkpoint, session, stop_after=1))
    assert torch.load(session, weights_only=False)["epoch"] == 1
    fit_head(head_config(prepared, lora_checkpoint, session, resume=True))
    a, b = (torch.load(p, weights_only=False) for p in (straight, session))
    assert b["epoch"] == 2 and [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for name, value in a["head"].items():
        torch.testing.assert_close(b["head"][name], value)

    split = EdgeSplit.load(prepared)
    scorer = fitted_head_scorer(straight, lora_checkpoint, prepared, split)
    assert 0.0 < evaluate(scorer, split).overall.mrr <= 1.0
    for features in ({"base": True}, {"random": 64}):  # the two controls' states are not the stage-1 states
        states, key = entity_states(lora_checkpoint, prepared, **features)
        with pytest.raises(ValueError, match="fit-head"):
            load_head(straight, torch.from_numpy(states), split, key)
    random = tmp_path / "random.pt"
    fit_head(head_config(prepared, lora_checkpoint, random, random=64))
    assert 0.0 < evaluate(fitted_head_scorer(random, lora_checkpoint, prepared, split), split).overall.mrr
    np.testing.assert_array_equal(entity_states(lora_checkpoint, prepared, random=64)[0],
                                  entity_states(lora_checkpoint, prepared, random=64)[0])  # seeded


def test_definition_states_sit_beside_the_names_and_a_head_fits_on_them(prepared, lora_checkpoint, tmp_path):
    from pretrain.evaluate import load_trained
    from pretrain.kg_head import (
        describe_head,
        entity_states,
        fit_head,
        fitted_head_config,
        fitted_head_scorer,
        load_head,
        pool_entities,
    )
    from pretrain.linkpred import evaluate

    names, key = entity_states(lora_checkpoint, prepared)
    both, both_key = entity_states(lora_checkpoint, prepared, definitions=True)
    with np.load(prepared / "definitions.npz") as arrays:
        tokens, lengths = arrays["tokens"], arrays["lengths"]
    defined = np.flatnonzero(lengths > 0)
    assert both.shape == (len(names), 2 * names.shape[1]) and both_key != key and 0 < len(defined) < len(names)
    np.testing.assert_array_equal(both[:, :names.shape[1]], names)
    undefined = lengths == 0  # no definition: the name's state stands in
    np.testing.assert_array_equal(both[undefined, names.shape[1]:], names[undefined])
    model, _ = load_trained(lora_checkpoint)
    np.testing.assert_allclose(both[defined, names.shape[1]:],
                               pool_entities(model, tokens[defined], lengths[defined], None, batch_size=3),
                               rtol=1e-4, atol=1e-5)

    path = tmp_path / "definitions.pt"
    fit_head(head_config(prepared, lora_checkpoint, path, definitions=True))
    split = EdgeSplit.load(prepared)
    assert 0.0 < evaluate(fitted_head_scorer(path, lora_checkpoint, prepared, split), split).overall.mrr <= 1.0
    named = describe_head(fitted_head_config(path), "SmolLM2-KG")
    assert named == "SmolLM2-KG + fitted head (names + definitions, 2 ep)"
    copy = tmp_path / "changed"  # a changed definitions file is pooled again, not read from the cache
    shutil.copytree(prepared, copy)
    changed = dict(np.load(copy / "definitions.npz"))
    changed["lengths"][defined[0]] -= 1
    np.savez(copy / "definitions.npz", **changed)
    again, _ = entity_states(lora_checkpoint, copy, definitions=True)
    assert not np.allclose(again[defined[0]], both[defined[0]]) and np.allclose(again[defined[1:]], both[defined[1:]])

    names_only = tmp_path / "names.pt"
    fit_head(head_config(prepared, lora_checkpoint, names_only, epochs=1))
    with pytest.raises(ValueError, match="fit-head"):  # a names-only head does not read these states
        load_head(names_only, torch.from_numpy(both), split, both_key)
