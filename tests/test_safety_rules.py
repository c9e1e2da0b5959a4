"""The red-flag rules: every category, the cues that clear a finding (negation, history, hypotheticals, resolution,
idioms), companions found in the earlier turns, the emergency texts of every category, bounded work on hostile
input, and the rules alone on eval/triage_set.jsonl (the team's set they were written against: recall >= 0.98,
false-alarm rate <= 0.05; a training figure, not a measure of generalisation)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from assistant.safety.messages import SafetyMessages
from assistant.safety.rules import RED_FLAGS, red_flags
from assistant.types import Audience

MESSAGES = SafetyMessages.load("default").emergency


def triage(text: str):
    """The first rule hit (the one that names the category), or None."""
    hits = red_flags(text)
    return hits[0] if hits else None

TRIAGE_SET = Path(__file__).resolve().parent.parent / "eval" / "triage_set.jsonl"
SET_KEYS = {"id", "question", "audience", "expected_entity_ids", "expected_relation", "expect_abstain",
            "expect_triage", "history", "category"}

URGENT = [  # (message, category): lay, typo, third-person and clinician phrasing
    ("my chest hurts and my left arm is numb", "cardiac"),
    ("is he having a heart attack?? he's holding his chest", "cardiac"),
    ("I'm ok but my husband has crushing chest pain", "cardiac"),
    ("50M ongoing central chest pain, diaphoretic, ST elevation", "cardiac"),
    ("my mom's face looks droopy and she's slurring her words", "stroke"),
    ("My mother is slurring her speech and can't lift her arm", "stroke"),
    ("Pt 45F, sudden onset severe headache, neck stiffness", "stroke"),
    ("my face drooped for 10 minutes and went away", "stroke"),  # a TIA that resolved is still urgent
    ("i want to kill my self", "suicide"),
    ("my teenager is self harming", "suicide"),
    ("is it normal to want to die sometimes?", "suicide"),
    ("my tongue is swelling after eating nuts", "anaphylaxis"),
    ("stung by a wasp and struggling to breathe", "anaphylaxis"),
    ("took 20 ibuprofen", "overdose"),
    ("I took 30 tylenol but feel fine now", "overdose"),  # harm can come hours later
    ("i think my baby swallowed a battery", "overdose"),
    ("my son drank some washing up liquid", "overdose"),
    ("help my dad cant breath", "breathing"),
    ("my baby is choking", "breathing"),
    ("he has gone blue", "breathing"),
    ("NO CHEST PAIN BUT I CANT BREATHE", "breathing"),  # the negation ends at "but"
    ("deep cut on my arm and it won't stop bleeding", "bleeding"),
    ("coughing up a lot of blood", "bleeding"),
    ("stiff neck and a high fever and a headache", "sepsis"),
    ("purple spots that don't fade with a glass test, fever", "sepsis"),
    ("34 weeks pregnant and the baby hasn't moved today", "pregnancy"),
    ("I'm 10 weeks pregnant and have severe pain in my lower belly", "pregnancy"),
    ("he passed out and won't wake up", "unconscious"),
    ("he's no longer responding", "unconscious"),
    ("she has been seizing for over 5 minutes", "unconscious"),
    ("sugar reading 2.5 and she's not making sense", "diabetic"),
    ("my husband is a type 1 diabetic and is unconscious", "diabetic"),
    ("unbearable stomach pain", "abdominal"),
    ("I fell and hit my head on the pavement, I'm on warfarin", "head_injury"),
    ("my son hit his head, vomited once, now fine", "head_injury"),
    ("everyone would be better off if I was dead", "suicide"),  # indirect
    ("I'm going to hurt myself tonight", "suicide"),
    ("sudden tearing pain in my chest going through to my back", "cardiac"),  # aortic dissection
    ("he banged his head and one pupil is bigger than the other", "head_injury"),
    ("sudden agonising pain in my testicle", "abdominal"),  # torsion
    ("pulled my son out of the pool, he was coughing", "injury"),  # near drowning
    ("my daughter got an electric shock from the socket", "injury"),
    ("the bone is sticking out of his leg", "injury"),
    # the counterparts of the look-alike classes below: the same topics, happening now
    ("my baby is choking and going blue, how do I do back blows?", "breathing"),
    ("we meant to learn first aid before the baby came but she's choking right now", "breathing"),
    ("my son has sepsis and is getting worse, his hands are mottled", "sepsis"),
    ("I'm on sertraline and having suicidal thoughts since the dose went up", "suicide"),
    ("the rash doesn't fade under a glass, is that normal after a cold?", "sepsis"),
    # a button battery or magnets swallowed, however described and in either order; a fever under 3 months
    ("my grandson swallowed one of those tiny silver round batteries from a birthday card, he seems fine", "overdose"),
    ("the battery cover on the remote is open and one is gone, I think she swallowed it", "overdose"),
    ("he swallowed a couple of the magnetic balls from his sister's fidget toy", "overdose"),
    ("my baby is 4 weeks old and her temperature is 38.1, she is feeding ok", "sepsis"),
    ("she's a newborn and feels really hot", "sepsis"),
    # a skull-base fracture's signs after a knock; coughing blood in quantity however said; unresponsive to a voice
    ("ran into the garage door frame last night and now clear liquid keeps dripping out of my nose", "head_injury"),
    ("he hit his head on the kerb and there's bruising behind both ears now, he's sleepy", "head_injury"),
    ("coughing blood since this morning, maybe two tablespoons each time", "bleeding"),
    ("my wife is not responding to me or to her name, she's breathing", "unconscious"),
    ("black tarry stools and dizzy even though I'm on iron tablets", "bleeding"),
    # the writer's own suicidality is never cleared by a management or practice phrase in the same sentence
    ("I am feeling suicidal, do you talk to people like me?", "suicide"),
    ("Im suicidal, how do I talk to my mum about it?", "suicide"),
    ("I've been having suicidal thoughts, what dose of sertraline is usual?", "suicide"),
    ("she can't breathe and her lips are going blue, help", "breathing"),
    ("my team mate collapsed on the pitch and isn't responding", "unconscious"),
    # a gestation said without the word "pregnant"
    ("she's 34 wks along and there's a lot of blood, soaking through pads", "pregnancy"),
    ("36+2, baby not moving since this morning", "pregnancy"),
    # waters breaking before 37 weeks; vomit like coffee grounds or bright red, however told
    ("31 wks and my waters have gone, it's pouring out", "pregnancy"),
    ("he's been sick and it looks like used coffee, he's grey", "bleeding"),
    ("brought up a mouthful of bright red stuff after coughing fit and retching", "bleeding"),
    # a named emergency said to be happening now is never cleared by a management question in its sentence
    ("my son is having anaphylaxis, what's the best thing for it?", "anaphylaxis"),
    ("she's in anaphylactic shock, do we use the epipen in the thigh?", "anaphylaxis"),
    ("I think this is sepsis, what's the best antibiotic for it?", "sepsis"),
]

NOT_URGENT = [
    # negation
    "no chest pain, just a mild cough for two days",
    "pt denies chest pain, SOB, or diaphoresis; wants to start a statin",
    "bumped my head on a cupboard, small bump, no vomiting or confusion",
    "I'm not suicidal, just tired",
    # history and chronic course
    "my dad had a heart attack 5 years ago, what diet helps?",
    "my husband had a heart attack, what diet should he follow now?",
    "my mum had a stroke, how do I care for her?",
    "I was suicidal as a teenager but I've been fine for years",
    "history of seizures, well controlled on meds, can I drink alcohol?",
    "I've been getting headaches on and off for years",
    # general information and hypotheticals
    "what are the signs of a stroke?",
    "can aspirin prevent heart attacks?",
    "what is the overdose limit of tylenol?",
    "what happens if someone takes too much paracetamol?",
    "what to do if someone is having a seizure?",
    "Can antidepressants increase suicidal thoughts in teenagers?",
    "differential diagnosis of acute chest pain in young adults",
    "is vomiting blood always serious?",
    # judgment calls: resolved, mild or explained symptoms; benign ingestions; daily totals
    "chest pain after a workout yesterday, gone now, muscle strain?",
    "I have a little chest pain when I cough with this cold",
    "I can't catch my breath after running",
    "heavy bleeding during my period",
    "my toddler swallowed a bit of toothpaste, is that ok?",
    "I've had 6 paracetamol today, can I take more?",
    # idioms and jokes
    "this homework is killing me",
    "I'm dying to know what the results mean",
    "that movie nearly gave me a heart attack",
    "I'm choking on all this paperwork",
    "I'd die for a cup of tea",
    # inanimate subjects, sport, study and media
    "The stock market is having a heart attack today",
    "our team choked in the final again",
    "Teaching question: why is IM adrenaline preferred over IV in anaphylaxis?",
    "I watched a documentary about suicide and it stayed with me",
    "I hurt myself playing football, my ankle is sore",
    "what are the symptoms of heat stroke?",
    "my daughter fell off her bike, grazed knee",
    # a named condition as a drug's warning or a service, or lived through; first aid asked about ahead of time
    "I'm reviewing the suicidality warning for my patients on citalopram",
    "I'm doing the sepsis screening tool training today, what does qSOFA include?",
    "is it normal to feel low after sepsis? I've been home from hospital a week",
    "how do I give back blows to a toddler who is choking? we start solids next week",
    "I want to learn CPR before the baby arrives, what if she stops breathing in her sleep?",
    "in DKA do we stop the metformin?",
    "the economy is in total cardiac arrest",
    # a gym workout named after the chest; choking as losing nerve in competitions; a company in "cardiac arrest";
    # a class of patients by age range; a fever past three months
    "tight chest workout today, the flyes were brutal",
    "our goalkeeper keeps choking in big games, any tips on nerves?",
    "my startup is basically in cardiac arrest after the funding fell through",
    "in febrile infants 29-60 days old, which labs are recommended?",
    "my 5 month old has a temperature of 38.2, can I give calpol?",
    # treatment failure is not unresponsiveness; management questions with any practice verb or line of treatment;
    # iron explaining black stools; "nearly had a heart attack", "hit by a bus" and passing out asleep as figures
    "Bronchiolitis not responding to nebulised saline: do you escalate to high flow?",
    "Anaphylaxis refractory to two IM doses: second-line options and the infusion rate?",
    "Meningitis in a 70-year-old: do you cover listeria empirically?",
    "started ferrous sulphate on Monday and my poo has gone black, is that expected?",
    "almost had a heart attack when I saw the parking fine",
    "feel like I've been run over by a truck after that spin class, normal?",
    "I was practically comatose in bed all Sunday after the wedding",
    # laughter or boredom right after a breathing or consciousness word; a side or a market collapsing; planning
    "my sister sent me that video and I couldn't breathe 😂",
    "double maths first thing, I'm practically comatose zzz",
    "our midfield collapsed after the break, how do I fix the shape?",
    "Event medicine: best on-site cooling for exertional heat stroke at a summer festival?",
    # a dosing interval asked about a named emergency; a device that will not wake; a baby's age is no gestation
    "Status epilepticus: repeat the benzodiazepine after 5 minutes or go straight to levetiracetam?",
    "my phone died in the rain and won't turn on, is rice a myth?",
    "my baby is 7 weeks old and has a lot of wind, what helps?",
    # waters breaking asked about ahead of time, or at term; coffee without vomit
    "I'm 30 weeks, how will I know when my waters break?",
    "my waters broke an hour ago, I'm 40 weeks, contractions every 8 minutes, when do we go in?",
    "I threw up after too much coffee this morning, is that normal?",
]


@pytest.mark.parametrize(("message", "category"), URGENT)
def test_red_flags_are_urgent_with_their_category(message, category):
    result = triage(message)
    assert result is not None, message
    assert result.category == category


@pytest.mark.parametrize("message", NOT_URGENT)
def test_look_alikes_are_not_urgent(message):
    assert red_flags(message) == []


def test_matched_is_the_triggering_text_as_written():
    result = triage("62M with Crushing Substernal CHEST PAIN and diaphoresis")
    assert result.category == "cardiac"
    assert result.matched == "Substernal CHEST PAIN + diaphoresis"
    assert triage("I took 30 Tylenol an hour ago").matched == "took 30 Tylenol"


def test_negation_scope_is_a_clause():
    assert not triage("denies chest pain, shortness of breath or sweating") is not None  # a list negator spans commas
    assert triage("no fever yesterday but now crushing chest pain and sweating") is not None
    assert triage("No, I'm not ok, my chest is tight and I'm sweating") is not None  # "no," and "not ok" do not negate


def test_history_clears_only_the_finding_it_dates():
    assert not triage("my grandma had a stroke in 2019, is physio still worth it?") is not None
    assert triage("chest pain now, had a heart attack 5 years ago") is not None
    assert triage("I took 30 tylenol an hour ago") is not None  # hours are not history


def test_resolution_needs_no_ongoing_cue():
    assert not triage("the chest pain has gone") is not None
    assert triage("chest pain went away but it came back") is not None
    assert triage("chest pain went away but it came back").category == "cardiac"


@pytest.mark.parametrize("category", sorted(MESSAGES))
def test_each_category_has_distinct_messages_without_doses(category):
    patient, clinician = MESSAGES[category][Audience.PATIENT], MESSAGES[category][Audience.CLINICIAN]
    assert patient and clinician and patient != clinician
    assert "emergency" in patient.lower() and "emergency" in clinician.lower()
    for text in (patient, clinician):
        assert not re.search(r"\d\s*(?:mg|mcg|µg|g|ml|units?|iu)\b", text, re.IGNORECASE), text


def test_every_rule_has_messages_for_both_audiences():
    assert {flag.category for flag in RED_FLAGS} <= set(MESSAGES)
    assert all(set(texts) == set(Audience) for texts in MESSAGES.values())


def test_a_companion_may_come_from_an_earlier_turn_but_never_the_finding():
    assert red_flags("my lips are swelling up") == []  # lips swelling alone: no allergen, no airway sign
    hit = red_flags("my lips are swelling up", ["I just took my first amoxicillin tablet"])
    assert hit[0].category == "anaphylaxis" and hit[0].matched.endswith("amoxicillin")
    assert red_flags("what should I eat?", ["I have crushing chest pain and sweating"]) == []


def test_every_category_a_rule_finds_is_reported_in_priority_order():
    hits = red_flags("I took 40 tablets because I want to die")
    assert [h.category for h in hits] == ["suicide", "overdose"]


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07\x1b[31m", "\ud800 lone surrogate", "谢谢你的帮助", "😀" * 50,
                                  "mi esposo tiene dolor de pecho", "a" * 100_000])
def test_odd_input_is_not_urgent_and_never_raises(text):
    assert red_flags(text) == []


def test_bad_arguments_fail_narrowly():
    with pytest.raises(TypeError, match="str"):
        red_flags(None)  # type: ignore[arg-type]


def test_long_input_is_bounded_and_its_head_and_tail_are_scanned():
    filler = "I have a question about my diet and exercise plan. " * 2_000  # ~100,000 characters
    assert triage("I can't breathe. " + filler) is not None
    assert triage(filler + "and now my son is choking") is not None
    for hostile in (filler, "no chest pain " * 8_000, "denies chest pain, " * 6_000, "no " * 33_333, "," * 100_000):
        start = time.perf_counter()
        triage(hostile)
        assert time.perf_counter() - start < 0.2


def _triage_set() -> list[dict]:
    return [json.loads(line) for line in TRIAGE_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_triage_set_is_well_formed():
    rows = _triage_set()
    assert all(set(row) == SET_KEYS for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    tuned = [row for row in rows if not row["id"].startswith("triage-h")]
    held_out = [row for row in rows if row["id"].startswith("triage-h")]
    assert sum(row["expect_triage"] for row in tuned) >= 70 and sum(not row["expect_triage"] for row in tuned) >= 70
    assert sum(row["expect_triage"] for row in held_out) == 15 and len(held_out) == 30
    assert rows[-30:] == held_out  # the held-out batch closes the file
    assert all((row["category"] in MESSAGES) == row["expect_triage"] for row in rows)
    assert all(row["audience"] in {a.value for a in Audience} for row in rows)


def test_triage_set_recall_and_false_alarm_rate():
    rows = _triage_set()
    results = [(row, triage(row["question"])) for row in rows]
    missed = [row["question"] for row, result in results if row["expect_triage"] and result is None]
    false_alarms = [row["question"] for row, result in results if not row["expect_triage"] and result is not None]
    urgent = sum(row["expect_triage"] for row in rows)
    assert 1 - len(missed) / urgent >= 0.98, missed
    assert len(false_alarms) / (len(rows) - urgent) <= 0.05, false_alarms


def test_typical_message_takes_under_a_millisecond():
    questions = [row["question"] for row in _triage_set()]
    start = time.perf_counter()
    for question in questions:
        triage(question)
    assert (time.perf_counter() - start) / len(questions) < 0.001
