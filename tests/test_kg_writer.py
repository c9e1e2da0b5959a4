"""The KG-worded answer (assistant/kg_writer.py): the ranked facts in the KG's words, grouped, each with its marker."""

from __future__ import annotations

from assistant.generation import GenerationConfig, make_generator
from assistant.kg_writer import NO_EVIDENCE, KGWriter, write

PROMPT = """Question: what helps gout?
Evidence:
[T1] Colchicine — treats — gout (PharmacotherapyDB 1.0) — expert-curated
[T2] Naproxen — treats — gout (PharmacotherapyDB 1.0) — expert-curated
[T3] Indomethacin — treats — gout (PharmacotherapyDB 1.0) — expert-curated
[T4] Allopurinol — treats — gout (PharmacotherapyDB 1.0) — expert-curated
[T5] Colchicine — causes side effect — Diarrhoea (SIDER 4.1, frequency 23%) — curated database
[P1] Gout (treatment) — Gout is treated with medicines that relieve pain. Later text.
"""


def test_facts_sharing_an_end_are_listed_in_rank_order_each_with_its_marker():
    assert write(PROMPT) == ("Colchicine [T1], naproxen [T2] and indomethacin [T3] are used to treat gout. "
                             "Allopurinol is used to treat gout [T4].")


def test_a_drug_with_several_side_effects_is_one_sentence_and_names_keep_their_capitals():
    prompt = ("[T1] Metformin — causes side effect — Nausea (SIDER 4.1, frequency 9%)\n"
              "[T2] Metformin — causes side effect — Diarrhoea (SIDER 4.1) — curated database\n"
              "[T3] Crohn's disease — associated with gene — NOD2 (DISEASES 2015)\n")
    assert write(prompt) == ("Metformin can cause nausea [T1] and diarrhoea [T2]. "
                             "Genes linked to Crohn's disease include NOD2 [T3].")


def test_without_facts_it_restates_the_first_passage_or_says_it_has_nothing():
    assert write("[P1] Gout (treatment) — Gout is treated with medicines that relieve pain. Later text.") == (
        "Gout is treated with medicines that relieve pain [P1].")
    assert write("Question: hello?") == NO_EVIDENCE


def test_it_is_a_generator_backend():
    writer = make_generator("kg")
    assert isinstance(writer, KGWriter) and writer.name == "kg"
    messages = [{"role": "system", "content": "Answer from the evidence."}, {"role": "user", "content": PROMPT}]
    assert writer.generate(messages, GenerationConfig()) == write(PROMPT)

