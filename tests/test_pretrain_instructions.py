"""Stage-2 instruction data (``pretrain/instructions.py``) on the fixture KG, fixture passages, fake embedder and
fake generator; one slow test renders an example with the real model's tokenizer."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

from assistant.answer import Assistant
from assistant.embedding import FakeEmbedder
from assistant.generation import FakeGenerator
from assistant.linking import Linker
from assistant.literature import IndexConfig, LiteratureIndex, build_index
from assistant.types import Audience, Triple
from kg.artefacts import sha256_file
from kg.vocab import Curation, Relation
from pretrain import instructions
from pretrain.data import entity_names, leaks, split_edges
from pretrain.instructions import (
    END_OF_TURN,
    GenerationNotAllowedError,
    InstructionConfig,
    PromptOnlyGenerator,
    build_examples,
    chat_text,
    clinician_facts,
    part_of,
    patient_facts,
    write,
)

PASSAGES = Path(__file__).parent / "fixtures" / "literature" / "passages.jsonl.gz"
MARKER = re.compile(r"\[([TP]\d+)\]")


@pytest.fixture(scope="module")
def bot(kg, tmp_path_factory, fake_triager) -> Assistant:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(IndexConfig(passages=PASSAGES, data_dir=data_dir, embedding_cache=None), FakeEmbedder(), kg)
    return Assistant(kg, Linker(kg), LiteratureIndex.open(FakeEmbedder(), data_dir, kg), FakeGenerator(),
                     fake_triager)


@pytest.fixture(scope="module")
def split(kg):
    return split_edges(kg, seed=0)


@pytest.fixture(scope="module")
def built(bot, split):
    return build_examples(bot, split, InstructionConfig(n=40, seed=0, batch=40))


def test_prepare_gives_the_messages_stream_sends(bot):
    first = bot.answer("what is metformin used for?")
    for question, history, audience in [("is nausea a side effect of metformin?", (), Audience.PATIENT),
                                        ("first-line drugs for migraine?", (), Audience.CLINICIAN),
                                        ("what about its side effects?", (first,), Audience.PATIENT)]:
        prepared = bot.prepare(question, history, audience)
        answer = bot.answer(question, history, audience)
        assert prepared.situation is None and list(prepared.messages) == bot.generator.calls[-1]
        assert [c.marker for c in answer.evidence] == list(prepared.block.items)
        assert answer.flags[:len(prepared.flags)] == prepared.flags
    calls = len(bot.generator.calls)
    for question, situation in [("", "empty"), ("crushing chest pain and I can't breathe", "triage"),
                                ("write me a poem about the sea", "out_of_scope"),
                                ("how much does metformin cost?", "not_covered")]:
        prepared = bot.prepare(question)
        assert prepared.situation == situation and prepared.messages == () and prepared.block is None
        assert bot.answer(question).text == prepared.fixed_text
    assert len(bot.generator.calls) == calls  # nothing was generated


def test_targets_cite_only_their_block_and_only_asked_relations(bot, built):
    assert len(built.examples) == 40
    for example in built.examples:
        cited = MARKER.findall(example.target)
        assert set(cited) <= set(example.block.items), example.target
        assert all(example.block.triples[m].predicate in example.asked for m in cited if m.startswith("T"))
        if example.kind == "answer":
            assert any(m.startswith("T") for m in cited), example.target
        for marker in (m for m in cited if m.startswith("P")):  # a passage is named, never quoted
            assert f"[{marker}] discusses {example.block.passages[marker].title.rstrip('.')}." in example.target
        assert len(re.findall(r"[.!?](?:\s|$)", example.target)) <= bot.config.max_sentences[example.audience]
        assert example.messages[0]["content"] == bot.prompts.system[example.audience]


def test_abstentions_say_the_sources_do_not_cover_it(built):
    abstentions = [e for e in built.examples if e.kind == "abstain"]
    assert len(abstentions) == round(InstructionConfig.abstain * 40)
    for example in abstentions:
        assert re.search(r"do not say|do not list|does not report|records no|lists no", example.target)
        if example.audience is Audience.PATIENT:
            assert "doctor or pharmacist" in example.target


def test_no_example_holds_or_names_a_held_out_edge(kg, split, built):
    held_out = set(split.held_out.triple_id.tolist())
    assert built.skipped.get("held-out triple in the evidence", 0) > 0  # the check had work to do
    assert not any(t.id in held_out for e in built.examples for t in e.block.triples.values())
    assert leaks([e.text for e in built.examples], split, entity_names(kg, split)) == []


def test_parts_hold_disjoint_entities_and_the_manifest_checks_them(kg, split, built, tmp_path, monkeypatch):
    # textstat's pronouncing dictionary takes seconds to load: the grade itself is checked by a slow test
    monkeypatch.setattr(instructions, "flesch_kincaid", lambda text, markers=False: 5.0)
    manifest = write(tmp_path, built, kg, split, InstructionConfig(n=40), seconds=1.0)
    seeds = {}
    for part in ("train", "dev", "test"):
        rows = [json.loads(line) for line in (tmp_path / f"instructions_{part}.jsonl").read_text().splitlines()]
        seeds[part] = {row["seed"] for row in rows}
        assert all(part_of(seed) == part for seed in seeds[part])
        assert manifest["counts"][part]["examples"] == len(rows)
    assert not (seeds["train"] & seeds["dev"] or seeds["train"] & seeds["test"] or seeds["dev"] & seeds["test"])
    assert sum(c["examples"] for c in manifest["counts"].values()) == 40
    assert manifest["kg_build_id"] == kg.manifest["build_id"] and manifest["patient_fk_grade_mean"] == 5.0
    assert all(manifest["files_sha256"][f"instructions_{part}.jsonl"] == sha256_file(tmp_path /
               f"instructions_{part}.jsonl") for part in seeds)
    row = json.loads((tmp_path / "instructions_train.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in row["messages"]] == ["system", "user"] and row["kind"] in ("answer", "abstain")


def _triple(marker: int, predicate: Relation, s: tuple[str, str], o: tuple[str, str], frequency=None) -> tuple:
    return f"T{marker}", Triple(id=f"t{marker}", subject=s[0], predicate=predicate, object=o[0], subject_name=s[1],
                                object_name=o[1], sources=("SIDER",), release="4.1 (2015)",
                                curation=Curation.DATABASE, frequency_text=frequency)


def test_patient_sentences_are_plain_and_clinician_ones_carry_the_evidence_line():
    drug = ("DB:1", "Metformin")
    facts = [_triple(1, Relation.CAUSES_SIDE_EFFECT, drug, ("SE:1", "Nausea"), "9%"),
             _triple(2, Relation.CAUSES_SIDE_EFFECT, drug, ("SE:2", "Diarrhoea")),
             _triple(3, Relation.CAUSES_SIDE_EFFECT, drug, ("SE:3", "Headache"))]
    assert patient_facts(facts, "DB:1") == ["Metformin can cause nausea [T1] and diarrhoea [T2].",
                                            "It can cause headache [T3]."]
    assert clinician_facts(facts[:2], "DB:1") == [
        "Reported adverse effects of metformin include nausea [T1] (frequency 9%) and diarrhoea [T2] "
        "(all SIDER 4.1; curated database)."]
    uses = [_triple(4, Relation.TREATS, drug, ("D:1", "type 2 diabetes mellitus")),
            _triple(5, Relation.INDICATED_FOR, drug, ("D:2", "Polycystic ovary syndrome"))]
    assert patient_facts(uses, "DB:1") == ["Metformin is used to treat type 2 diabetes mellitus [T4].",
                                           "It is used for Polycystic ovary syndrome [T5]."]  # disease names keep case
    signs = [_triple(i, Relation.HAS_SYMPTOM, ("D:1", "asthma"), (f"S:{i}", name))
             for i, name in ((1, "Wheezing"), (2, "Cough"))]
    assert patient_facts(signs, "D:1") == ["Wheezing [T1] and cough [T2] can be signs of asthma."]


@pytest.mark.slow
def test_patient_targets_read_at_grade_7_or_below(built):
    grades = [instructions.flesch_kincaid(e.target) for e in built.examples if e.audience is Audience.PATIENT]
    assert grades and sum(grades) / len(grades) <= 7


class _ChatML:
    """A tokenizer stand-in with SmolLM2's chat template."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def encode(self, text, add_special_tokens=False):
        return text.split()


def test_chat_text_puts_the_target_after_the_runtime_prompt():
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    prompt, full = chat_text(_ChatML(), messages, "Nausea [T1].")
    assert full.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")
    assert full[len(prompt):] == "Nausea [T1]." + END_OF_TURN


def test_the_prompt_only_generator_counts_but_never_generates():
    generator = PromptOnlyGenerator(_ChatML())
    assert generator.count_tokens("two words") == 2
    with pytest.raises(GenerationNotAllowedError):
        generator.generate([{"role": "user", "content": "hi"}], None)


@pytest.mark.slow
def test_chat_text_with_the_real_tokenizer_ends_the_turn_with_its_eos():
    generator = PromptOnlyGenerator.load()  # also checks its counts against llama.cpp's
    tokenizer = generator.tokenizer
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    prompt, full = chat_text(tokenizer, messages, "Nausea [T1].")
    assert full.startswith(prompt) and full.endswith(END_OF_TURN) and tokenizer.eos_token == END_OF_TURN
    ids = tokenizer.encode(full, add_special_tokens=False)
    assert ids[-1] == tokenizer.eos_token_id
    assert full == tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": "Nausea [T1]."}],
                                                 tokenize=False).rstrip("\n")


def test_follow_ups_carry_the_earlier_question(built):
    follow_ups = [e for e in built.examples if e.history]
    assert follow_ups
    for example in follow_ups:
        assert f"Earlier question: {example.history[-1]}" in example.messages[1]["content"]
        assert example.record()["history"] == list(example.history)


def test_a_pair_is_answered_through_another_source_record_of_the_entity(bot):
    """'Feeling sick' linked to HPO's Nausea; the fact hangs on SIDER's Nausea (the same concept): the target says
    yes and cites it, where comparing record ids alone wrote 'My sources do not say ...' beside the fact."""
    task = next(t for t in instructions.TASKS if t.name == "is_side_effect")
    prepared = bot.prepare("is nausea a side effect of metformin?", (), Audience.PATIENT)
    fact = next(m for m, t in prepared.block.triples.items() if t.object == "UMLS:C0027497")
    as_hpo = dataclasses.replace(prepared, seeds=("DRUGBANK:DB00331", "HP:0002018"))
    rng = random.Random(0)
    target = instructions.write_target(task, as_hpo, "DRUGBANK:DB00331", "metformin", "feeling sick", rng,
                                       bot.concept)
    assert target.kind == "answer" and target.text.startswith("Yes") and f"[{fact}]" in target.text
    alone = instructions.write_target(task, as_hpo, "DRUGBANK:DB00331", "metformin", "feeling sick", rng)
    assert alone.kind == "abstain"  # without the concept: the wrong denial this test guards against
    # and a denial of a fact the evidence holds fails the check every target must pass (``_Drafter.verified``)
    _, _, removed, flags = bot.check("My sources do not say that metformin can cause nausea.", as_hpo)
    assert removed and any(f.startswith("contradicted sentence removed") for f in flags)
