"""Requests for personal medical advice, which the assistant declines kindly and refers to a professional.

The KG and the literature hold general facts: no doses, no interactions with a person's other conditions, no
paediatric or pregnancy data. So before answering, a question is checked for the kinds of request only a
prescriber who knows the person can answer:

* ``dosing`` — how much / how many / what dose / how often to take or give ("how many mg of zoloft should I take",
  "dose of amoxicillin for my son");
* ``prescription`` — asking the assistant to prescribe or to get a prescription medicine ("can you prescribe me
  amoxicillin", "write me a script for ...");
* ``stop_switch`` — stopping, skipping, halving or switching one's own medicine ("can I stop my blood thinner before
  the dentist", "should I switch from lipitor to crestor");
* ``safe_for_me`` — whether a medicine is safe for this person with their conditions or other medicines ("is it
  safe for me to take advil with my kidney problems", "can I take X with my Y");
* ``child_pregnancy`` — a medicine for a child or in pregnancy or breastfeeding ("can I take ibuprofen while
  pregnant", "what can I give my 2 year old").

Each kind is one pattern over the shape of the request (a person, a modal or question word, an act on a
medicine), not a list of messages. Emergencies are triaged before this check and always win.
"""

from __future__ import annotations

import re

_PERSON = r"(?:i|me|my|we|us|our|he|him|his|she|her|they|them|their|mum|mom|dad|wife|husband|son|daughter|kid|kids|" \
          r"child|baby|grandma|grandad|granddad|grandpa|nan|partner)"
_KINDS: tuple[tuple[str, re.Pattern], ...] = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in (
    ("dosing",
     r"\bhow (?:much|many)\b.{0,40}\b(?:should|can|could|do|may|must|to)\b.{0,25}\b(?:take|give|have|use|get|"
     r"be (?:on|given))\b|"
     r"\bhow (?:much|many) (?:mg|milligrams?|mcg|ml|tablets?|pills?|capsules?|puffs?|units?)\b|"
     r"\b(?:what|which|right|correct|safe|max(?:imum)?|usual)\s+(?:is the\s+)?(?:dose|dosage|dosing|amount)\b|"
     r"\b(?:dose|dosage|dosing) (?:of|for) \w+ (?:for|in) (?:me|my|a \d+|an? (?:adult|kid|child))|"
     r"\bhow (?:often|many times)\b.{0,30}\b(?:should|can|do) " + _PERSON + r"\b.{0,20}\b(?:take|give|use)\b|"
     r"\b(?:double|increase|up|raise|lower|reduce|halve|split|cut(?: down)?) (?:my|the|his|her|our) (?:\w+ )?"
     r"(?:dose|dosage|pills?|tablets?|to \d|by \d)|\b(?:up|increase|raise|double|lower|halve) it (?:to|by) \d|"
     r"\b(?:can|should|could|may) " + _PERSON + r" (?:just )?(?:double|halve|increase|up) (?:it|them|that|up)\b|"
     # an amount of one's own choosing: "can i just take 100", "should i take 2 tonight"
     r"\b(?:can|should|could|may) " + _PERSON + r" (?:just |simply )?(?:take|have|use|give) (?:\d+|two|three|four)\b|"
     r"\b(?:go|come|move) (?:up|down) to \d|"
     r"\b(?:missed|forgot|skipped) (?:my|a|his|her|the|to take|\d+|two|three|a couple of|a few|some|several)\b"
     r".{0,60}\b(?:should|can|do|must)\s+" + _PERSON
     + r"\b|\b(?:take|give) (?:two|2|double|an extra|another|extra)\b|"
     r"\b(?:cut|split|break|snap)\s+(?:it|them|that|(?:my|the|his|her|our)\s+(?:\w+\s+)?(?:pills?|tablets?|doses?))"
     r"\s+in\s+(?:half|halves|two)\b|\b(?:take|give) (?:only |just )?(?:half|a half|a quarter) (?:of )?(?:it|them|a|my|"
     r"his|her|the)\b|\b(?:take|try|go on) (?:a )?(?:smaller|lower|bigger|higher|larger|weaker|stronger) dose\b"),
    ("prescription",
     r"\b(?:prescribe|prescribing)\s+(?:me|us|him|her|my|something|anything)\b|"
     r"\b(?:take|use|have|borrow|try)\s+(?:some of\s+)?(?:my|his|her)\s+(?:wife|husband|partner|friend|mum|mom|dad|"
     r"sister|brother|son|daughter|neighbour|neighbor|flatmate|mate)(?:'s|s)\b|\bsomeone else's\b|"
     r"\b(?:write|give|send|get|need|want)\s+(?:me|us|him|her)?\s*(?:a|an)?\s*(?:new\s+)?(?:prescription|script|rx|"
     r"refill)\b|"
     r"\bcan (?:you|u|ya) (?:give|get|order|send) me (?:some|an?|the)?\s*\w+\b.{0,20}\b(?:pills?|tablets?|medicine|"
     r"antibiotics?|prescription)\b|"
     r"\b(?:can|could) (?:you|u|ya) (?:give|get|prescribe|order) me (?:something|anything)\b"),
    ("stop_switch",
     r"\b(?:can|could|should|shall|may|must|do|is it ok(?:ay)? (?:if|to)|is it safe to|ok to|okay to)\s+"
     + _PERSON + r"\s+(?:just\s+|simply\s+|safely\s+|now\s+|still\s+)?"
     r"(?:stop|quit|skip|miss|come off|get off|go off|switch|change|swap|wean|taper|halve|pause|"
                 r"hold|restart|start taking|start on)\b"
     r"(?!\s+(?:smoking|drinking|vaping|snoring|worrying|cigarettes|alcohol|caffeine|eating))|"
     # the person stops it ("stop my warfarin?", "i want to stop my statin"), not a drug that stops a condition
     # ("will zyloprim stop my gout attacks")
     r"(?:^\s*|\b(?:i|i'll|i will|i might|to|and|or|then|just)\s+)(?:stop|quit|skip|come off|switch|swap|change)\s+"
     r"(?:taking\s+)?(?:my|his|her|our)\s+\w+|"
     r"\b(?:better off|be better) on\b.{0,40}\binstead of\b|\binstead of (?:my|his|her|our)\b"),
    ("safe_for_me",
     r"\b(?:is it|is that|would it be|will it be|it's|its)\s+(?:safe|ok|okay|alright|all right|fine|bad|dangerous)"
     r"\s+(?:for\s+(?:me|my|him|her|us)|if\s+(?:i|he|she|my)|to take\b.{0,40}\b(?:with|while|if|since)\s+"
     r"(?:my|i|i'm|i am|i have|he|she))\b|"
     r"\b(?:am i|is he|is she|are we|would i be|will i be)\s+(?:ok|okay|alright|all right|safe|fine)\s+(?:to\s+)?"
     r"(?:take|use|have|drink|keep taking|carry on)\b|"
     r"\b(?:i'?m|i am|he'?s|she'?s|he is|she is) on \w+\b.{0,80}\b(?:is it|am i|can i|should i|ok to|okay to|"
     r"safe to)\b.{0,40}\b(?:take|have|drink|use)\b|"
     r"\bcan\s+" + _PERSON + r"\s+(?:safely\s+)?(?:take|use|have|drink|give)\b.{0,50}\b(?:with|while|if|since|"
     r"although|even though)\s+(?:my|i have|i'm|i am|he has|she has|his|her|having)\b|"
     r"\b(?:safe|ok|okay) for (?:me|my|him|her)\b.{0,30}\b(?:take|use|with)\b|"
     # one's own medicine with something else: "can I take my xanax with a couple of beers"
     r"\b(?:can|could|should|may)\s+" + _PERSON + r"\s+(?:safely\s+|still\s+)?(?:take|have|use|mix|combine|drink)\s+"
     r"(?:my|his|her|our)\s+\w+(?:\s+\w+)?\s+(?:with|and|alongside|after|on top of)\b|"
     r"\b(?:can|could|should|may)\s+" + _PERSON + r"\s+(?:have|drink)\b.{0,30}\b(?:on|with|while (?:on|taking))\s+"
     r"(?:my|his|her|our)\s+\w+"),
))


#: a child or a pregnancy the question is about, and a request about a medicine for them: both must be there
#: ("my 4 year old has a temperature" asks about a symptom, which the assistant answers after triage); "in a
#: non-pregnant woman" and "not breastfeeding" say whom the question is not about
_CHILD_OR_PREGNANCY = re.compile(
    r"(?<!\bnon-)(?<!\bnon )(?<!\bnot )\b(?:pregnan\w*|expecting a baby|trying to conceive|breast ?feed\w*|"
    r"breastfeed\w*|while nursing)\b|"
    r"\b(?:my|our|a|her|his)\s+(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[- ]?"
    r"(?:year|yr|month|week|day)s?[- ]?old\b|(?<!for )\b(?:1[0-7]|\d)\s?(?:yo|y/o|yrs?)\b(?! ago)|"
    r"(?<!for )\b\d{1,2}\s?(?:mo|months?)\b(?! ago)|"
    r"\b(?:my|our)\s+(?:baby|toddler|infant|newborn|kid|kids|child|children|son|daughter|little one)(?:'?s)?\b|"
    r"\b(?:for|in|to|give|giving)\s+(?:kids|children|babies|toddlers|infants|newborns)\b|"
    r"\b(?:a|an|the|per)\s+(?:\d+\s?kg\s+|\d+[- ]?(?:year|yr|month)[- ]?old\s+)?(?:child|toddler|infant|baby|newborn|"
    r"neonate)\b|\b(?:paediatric|pediatric)\b", re.IGNORECASE)
_MEDICINE_REQUEST = re.compile(
    r"\b(?:can|could|should|may|is it|is|are|safe|ok|okay|allowed|what|which)\b.{0,40}"
    r"\b(?:take|taking|give|giving|get|buy|use|using|continue|continuing|carry on|stay on|keep (?:taking|on))\b"
    r"(?!\s+(?:him|her|them|my \w+|our \w+|the \w+)\s+(?:to|for a|out)\b)|"
    r"\b(?:medicine|medication|meds|drugs?|pills?|tablets?|syrup|antibiotics?|painkillers?|dose|dosage|dosing|"
    r"inhalers?|creams?|ointments?|lotions?|drops|sprays?)\b|"
    r"\b(?:give|giving)\s+(?:him|her|them|my \w+|our \w+)\s+for\b|"
    r"\b(?:helps?|treat|treats|treated|treating|treatment|best (?:for|thing)|good for|works? for)\b|"
    r"\bhow (?:much|many)\b|\b(?:safest|first[- ]line|preferred|drugs? of choice)\b|"
    r"\b(?:is|are)\s+\w+\s+(?:ok|okay|safe|alright|fine|allowed)\b|"
    r"^\s*(?:and|what about|how about)\s+(?:for|with|in|to)\b", re.IGNORECASE)


def personal_request(question: str) -> str | None:
    """The kind of personal advice the question asks for ("dosing", "prescription", "stop_switch",
    "safe_for_me", "child_pregnancy"), or None for a general question."""
    if _CHILD_OR_PREGNANCY.search(question) and _MEDICINE_REQUEST.search(question):
        return "child_pregnancy"
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return None
