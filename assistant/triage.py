"""Safety triage, the first stage: find red-flag messages before any retrieval and put emergency guidance first.

``triage(text, audience)`` returns a ``Triage``; ``urgent=True`` carries the red-flag ``category``, the
``matched`` text and an audience-specific ``message`` (``MESSAGES``). The rules are regular expressions with word
boundaries over a lower-cased copy of the message, in ``RED_FLAGS`` (one block per category, its rule in the
comment above it). A finding does not count when one of these cues applies to it (NegEx-style, per clause):

* negation: "no", "not", "n't", "never", "without", "denies", ... up to 5 words before it (10 for the list
  negators "no"/"denies"/"without"/"negative for", which carry across commas: "denies chest pain, SOB or
  sweating"); a clause boundary ("but", "now", "presenting", a new "I'm"/"he's", ". ; :") ends the scope;
  pseudo-negations ("not sure", "won't stop", "not feeling well", "don't know") are not negations;
* history or chronic course: "history of", "hx of", "prior", "used to" shortly before it; "5 years ago" (weeks
  or longer), "last year", "in 2019", "as a child" after it in its clause; "for 3 months", "on and off",
  "sometimes", "every day" in its clause. Minutes, hours and days are *not* history: "took 30 tylenol an hour
  ago" is urgent. "Had a heart attack/stroke" is history unless "just had" or "I think he had";
* hypothetical or general question: "if someone ...", "what happens if you ...", or a sentence with a question
  form or a topic phrase ("what are the signs of", "management of", "can X cause") and no first/third-person
  subject (I, my, he, she, pt, "62M"). Suicide needs a topic phrase: "is it normal to want to die?" stays urgent;
* resolution, anywhere in the message: "gone now", "went away", "feel fine now", "pain-free", unless an ongoing
  cue ("still", "again", "right now", "getting worse") is present, and never for stroke (symptoms that went away
  may be a TIA: still an emergency), suicide, overdose (harm can come hours later) or head injury;
* for rules with a ``benign`` pattern (bare chest pain, "can't catch my breath", heavy bleeding, severe abdominal
  pain): a mild qualifier ("a bit", "slight", "mild") just before it, or a benign cause in its clause ("from a
  cold", "after the gym", "heartburn", a period).

Judgment calls: a chest pain the writer says has gone ("after a workout yesterday, gone now, muscle strain?") is
not urgent (the answer should still advise a prompt check-up); overdose limits and "what happens if someone takes
too much" are information, while a past ingestion of 5+ tablets, "too many", "a whole bottle", "an overdose", or a
child swallowing medicines, batteries, magnets or household chemicals is urgent (a double dose, toothpaste or gum
is not); suicide rules fire on jokes like "I want to die lol" on purpose; idioms ("killing me", "dying to know",
"gave me a heart attack", "choking on this paperwork") are blanked before matching. English only: other
languages are not urgent (the linking stage is English-only too).

Bounds: only the first ``HEAD_CHARS`` and last ``TAIL_CHARS`` characters are scanned (a red flag in the middle
of a very long paste is missed; chat messages are far shorter), cues are looked for within ``CONTEXT_CHARS`` of a
finding, and at most ``MAX_FINDINGS`` matches per rule are checked. A typical message takes ~0.2 ms, a 100,000-
character one ~15 ms. Empty text, control characters and other scripts are non-urgent, never an error.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from assistant.types import Audience, Triage

HEAD_CHARS = 4000  # scanned from the start of the message
TAIL_CHARS = 1000  # and from its end, when the message is longer than HEAD_CHARS + TAIL_CHARS
CONTEXT_CHARS = 200  # cues are looked for at most this far before/after a finding (NegEx windows are shorter)
MAX_FINDINGS = 20  # matches of one rule checked for cues per message: keeps the cue checks linear in the length


def _any(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


# ---- shared vocabulary: lower case, apostrophes normalised to ', gaps of at most a few words ----
W = r"(?:[\w'-]+\s+)"  # one intervening word
CANT = r"(?:can'?t|cannot|can not|could ?n'?t|couldnt|unable to|not able to)"
NOT = _any(r"is ?n'?t|isnt|is not|not|don'?t|dont|do not|won'?t|wont|will not|does ?n'?t|doesnt|does not",
           r"has ?n'?t|hasnt|has not|did ?n'?t|didnt|can'?t|cannot")
WHO = r"(?:my|his|her|their|the|a|your)"
BREATHE = r"(?:breath\w*|breth\w*|brea?the?|beathe?|air)"
CHEST = r"(?:chest|chst|chets|cheast|ches)"
CHEST_FEEL = _any(r"pains?|pian|pressure|tightness|tight|heaviness|heavy|discomfort|hurts?|hurting|ache|aching",
                  r"squeezing|crushing|burning|constriction")
ARM_JAW = r"(?:arms?|jaw|shoulder|neck|back)"
BELLY = r"(?:stomach|belly|abdomen|abdominal|abdo|tummy|tummie|pelvic|pelvis|groin)"
STRONG = r"(?:severe|severely|excruciating|unbearable|agoni[sz]ing|worst|extreme|intense|crippling|10/10)"
SUDDEN = r"(?:sudden\w*|all of a sudden|out of nowhere|acute(?:ly)?(?: onset)?|abrupt\w*)"
FEVER = _any(r"fever\w*|febrile|feverish|pyrexi\w*|high (?:temp\w*|temperature)|burning up|rigou?rs",
             r"temp\w*\s*(?:of|is|was|:)?\s*(?:3[89]|4[0-2]|10[2-7])(?:\.\d)?")
PREGNANT = _any(r"pregnan\w*|preggers|\d+\s*(?:weeks?|wks?)\s*(?:pregnant|gestation)|g\d\s*p\d",
                r"(?:at|@)\s*\d+\s*(?:weeks?|wks?)\b")
DRUG = _any(r"pills?|pils|tablets?|tabs|capsules?|caps|meds|medications?|medicines?|tylenol|paracetamol",
            r"acetaminophen|panadol|ibuprofen|advil|motrin|nurofen|aspirin|insulin|antidepressants?|opioids?|oxy\w*",
            r"codeine|tramadol|benzos?|xanax|valium|diazepam|sleeping pills?|bottle|packet|pack|box|strip")
POISON = _any(r"button batter\w*|batter(?:y|ies)|magnets?|bleach|detergent|laundry pods?|dishwasher tablets?",
              r"cleaning \w+|cleaner|chemicals?|anti-?freeze|poison\w*|pesticide|weed ?killer|drain cleaner",
              r"lamp oil|paraffin|kerosene|petrol|gasoline|e-?liquid|vape juice|nicotine|washing[- ]?up liquid",
              r"dish soap|mouthwash|hand (?:gel|saniti[sz]er)|iron tablets", DRUG)
AMOUNT = _any(r"[5-9]|\d\d+|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|a (?:whole|full|entire)",
              r"the (?:whole|entire)|whole|entire|all|lots of|a lot of|loads of|a load of|a bunch of|a handful of",
              r"handfuls of|(?:way |far )?too many|too much|dozens? of")

CHEST_SYMPTOM = _any(
    rf"\b{CHEST}\s+(?:is\s+|feels?\s+|was\s+)?(?:really\s+|very\s+|so\s+|super\s+)?{CHEST_FEEL}\b",
    rf"\b{CHEST_FEEL}\s+(?:in|on|across|around)\s+{WHO}\s+{CHEST}\b",
    rf"\b(?:tight|heavy|crushing|painful|squeezing)\s+{CHEST}\b",
    rf"\b(?:clutching|holding|grabbing|gripping)\s+(?:at\s+)?{WHO}\s+{CHEST}\b",
    rf"\b(?:elephant|weight|someone)\s+{W}{{0,2}}on\s+{WHO}\s+{CHEST}\b",
    rf"\b(?:substernal|retrosternal|central|precordial)\s+{CHEST}?\s*{CHEST_FEEL}",
)
CARDIAC_COMPANION = _any(
    r"\b(?:sweat\w*|diaphore\w*|clammy|grey|gray|pale|ashen)", rf"\b(?:radiat\w*|spread\w*|going|down|into|to)\s+"
    rf"{W}{{0,2}}{ARM_JAW}\b", rf"\b{ARM_JAW}\s+(?:pain|hurts?|ache)", r"\bnause\w*|\bfeel sick|\bfaint\w*",
    rf"\bshort(?:ness)? of {BREATHE}|\bsob\b|\bbreathless|\bcatch\s+{WHO}\s+breath",
)
FACE = _any(
    r"\b(?:face|smile|mouth|lip)\s+(?:is\s+|was\s+|has\s+|looks\s+|went\s+|seems\s+)?(?:all\s+of\s+a\s+sudden\s+|"
    r"suddenly\s+|now\s+)?(?:droop\w*|lopsided|uneven|sagg\w*|fallen|dropped|crooked|twisted|numb)",
    r"\b(?:facial|face)\s+(?:droop|palsy|weakness)", r"\b(?:droop\w*|lopsided|crooked)\s+(?:face|smile|mouth)",
    rf"\b(?:one side of|half(?: of)?)\s+{WHO}\s+(?:face|mouth)\s+(?:is\s+|has\s+|went\s+)?(?:droop\w*|numb|"
    r"dropp\w*|sagg\w*|fallen|paraly[sz]ed|weak)",
)
SPEECH = _any(
    r"\bslurr?(?:ed|ing)\s+(?:(?:his|her|my|their)\s+)?(?:speech|words|talking)", r"\b(?:is|'s|are|was|started)\s+"
    r"slurring", r"\bspeech\s+(?:is\s+|was\s+|seems\s+|sounds\s+|has\s+been\s+|suddenly\s+)*(?:slurr?ed|garbled|"
    r"jumbled|strange|weird|off)", r"\b(?:words|speech)\s+(?:are|is)\s+(?:all\s+)?(?:jumbled|garbled|muddled|mixed "
    r"up)", r"\btalking\s+(?:funny|strange|weird|gibberish|nonsense)", r"\baphasi\w*|\bdysarthri\w*|\bdysphasi\w*",
    rf"\b{CANT}\s+(?:find\s+{WHO}\s+words|get\s+{WHO}\s+words\s+out)",
    r"\bwords\s+(?:are\s+)?(?:come|coming)\s+out\s+(?:wrong|jumbled|garbled|muddled)",
)
ONE_SIDE_WEAK = _any(
    rf"\b{CANT}\s+(?:lift|raise|move|feel)\s+{WHO}?\s*(?:right|left|one)\s+(?:arm|leg|hand|side)",
    r"\b(?:right|left|one)\s+(?:arm|leg|hand|side)\s+(?:is\s+|feels\s+|went\s+|has gone\s+|suddenly\s+)*(?:weak|"
    r"numb|limp|dead|paraly[sz]ed|floppy)", r"\b(?:one|left|right)[- ]sided\s+(?:weakness|numbness|paralysis)",
    r"\bhemi(?:paresis|plegia|paretic|plegic)\b", rf"\b{CANT}\s+raise\s+both\s+arms",
)
# "having/just had a heart attack", "I think he had a stroke": said of now. Plain "had a stroke" is history.
NOW_HAVING = r"(?:having|(?:'s|is|am|i'm) having|just had|(?:think|worried|scared|afraid|might|may)\s+" \
             rf"{W}{{0,3}}?(?:had|has had|is having|having))\s+(?:a\s+)?"
UNRESPONSIVE = _any(
    r"\bunresponsive\b|\bunconscious\b|\bunrousable\b|\bcollapsed\b", r"\bgcs\s*(?:of\s*)?(?:[3-9]|1[0-2])\b",
    rf"\b(?:{NOT}|no longer|stopped)\s+(?:responding|responsive|respond|waking(?: up)?|wake(?: up)?|coming round|"
    r"coming to)\b",
    rf"\b{CANT}\s+(?:wake|rouse)\s+(?:him|her|them|my|his|\w+)\b",
)
SEIZURE = r"(?:seizure|seizing|fitting|fit|convuls\w*)"
LOW_SUGAR = _any(
    r"\bhypos?\b", r"\bhypoglyc\w*", r"\blow (?:blood )?(?:sugars?|glucose|bgl?|bm)\b",
    r"\b(?:sugars?|glucose|bgl?|bm|cbg|meter)\s+(?:levels?\s+|reading\s+)?(?:is|was|of|at|reads|says|:)?\s*"
    r"(?:[0-2](?:\.\d)?|3\.[0-4]|[1-5]\d|lo|low)\b(?!\s*(?:years|%|\.\d))",
)
ALERT = _any(rf"\b(?:confus\w*|disorient\w*|not making sense|drows\w*|acting (?:drunk|strange|weird)|floppy|"
             rf"slurr\w*|{SEIZURE})", UNRESPONSIVE)
ALLERGEN = _any(r"\b(?:sting|stung|bee|wasp|hornet|peanuts?|nuts?|shellfish|shrimp|prawns?|ate|eating)\b",
                r"\b(?:after taking|allerg\w*|antibiotics?|amoxicillin|penicillin|ibuprofen|aspirin|injection)\b",
                r"\b(?:vaccine|reaction)\b")
CANT_BREATHE = _any(
    rf"\b{CANT}\s+{BREATHE}\b(?!\s+through\s+{WHO}\s+nose)", r"\bgasping\b",
    rf"\b(?:struggling|struggle|fighting|gasping)\s+(?:to\s+|for\s+)?{BREATHE}",
    rf"\b(?:severe(?:ly)?|extreme(?:ly)?|really bad|very bad)\s+(?:short(?:ness)? of {BREATHE}|sob|dyspn\w*|"
    rf"breathless\w*|difficulty {BREATHE}|trouble {BREATHE})", r"\bstridor\b",
    r"\b(?:barely|hardly|can'?t|cannot|unable to|not able to)\s+(?:speak|talk|complete|finish)\s+(?:in\s+)?"
    r"(?:full\s+)?(?:sentences|a sentence)",
)
HEAD_HIT = _any(
    rf"\b(?:hit|banged|bumped|bashed|smacked|knocked|struck|whacked|cracked|hurt|injured)\s+{W}{{0,2}}?"
    r"(?:head|skull)\b", r"\bhead\s+(?:injury|trauma|strike|knock|bang|wound)", r"\bconcuss\w*",
    rf"\bfell\s+{W}{{0,4}}?(?:on|onto)\s+(?:his|her|my|their|the back of)\s+head",
)
HEAD_RED = _any(r"\b(?:vomit\w*|throw\w* up|threw up|thrown up|been sick|puk\w*|confus\w*|drows\w*|sleepy)",
                r"\b(?:knocked out|passed out|blacked out|lost consciousness|seiz\w*|fitting|slurr\w*|clear fluid)",
                r"\b(?:unequal pupils|anticoag\w*|warfarin|apixaban|rivaroxaban|edoxaban|dabigatran)",
                r"\bblood thinners?", UNRESPONSIVE)
# Benign causes that clear a bare symptom (with a mild qualifier: see _MILD).
MUSCULAR = r"\b(?:from|with)\s+(?:a|the|my|this)?\s*(?:cold|cough\w*|flu|workout|gym|exercise|running|lifting|" \
           r"weights)\b|\bafter\s+(?:the\s+|a\s+|my\s+)?(?:gym|workout|exercise|running|a run|lifting|sport|" \
           r"climbing)\b|\b(?:muscle|muscular) strain|\bpulled (?:a )?muscle|\boverdid|\b(?:when|if) i press|" \
           r"\bclimbing stairs"
MENSTRUAL = r"\bperiods?\b|\bmenstru\w*"


@dataclass(frozen=True)
class RedFlag:
    """One rule: ``pattern`` found and not cleared by a cue, and (if set) ``needs`` found and not cleared anywhere
    in the message. ``benign``: causes that, like a mild qualifier just before it, clear a bare symptom."""

    category: str
    pattern: re.Pattern[str]
    needs: re.Pattern[str] | None = None
    benign: re.Pattern[str] | None = None


def _flag(category: str, pattern: str, needs: str | None = None, benign: str | None = None) -> RedFlag:
    return RedFlag(category, re.compile(pattern), re.compile(needs) if needs else None,
                   re.compile(benign) if benign else None)


# Category order is priority: the first category with a finding names the red flag.
RED_FLAGS: tuple[RedFlag, ...] = (
    # suicide: a wish or plan to die, self-harm, "better off without me"; third person too ("kill herself").
    _flag("suicide", r"\bkill(?:ing)?\s+(?:my|him|her|them|your)\s?sel(?:f|ves)\b|\bkms\b|\bsuicid\w*|\bsucid\w*|"
          r"\bsuicd\w*|\bself[- ]?harm\w*|\b(?:cutting|hurting|harming|burning)\s+(?:my|him|her|them)\s?sel(?:f|ves)"),
    _flag("suicide", r"\b(?:want|wants|wanted|wanna|wish|wishes|plan\w*|ready|trying|tried)\s+(?:to\s+)?die\b|"
          r"\b(?:want|wants|wanna|going|gonna|plan\w*|ready|about|trying|tried)\s+(?:to\s+)?(?:end\s+(?:it\b|it all|"
          r"my life|his life|her life|their life|things|everything)|take\s+(?:my|his|her)\s+(?:own\s+)?life|not\s+"
          r"(?:be\s+)?(?:alive|here))|\bend(?:ing)?\s+(?:my|his|her)\s+(?:own\s+)?life"),
    _flag("suicide", r"\b(?:don'?t|dont|do not|doesn'?t|no longer)\s+want\s+to\s+(?:live|be alive|be here|exist|"
          r"wake up|go on)|\bbetter off\s+(?:dead|without me)|\bno (?:reason|point) (?:to|in) (?:live|living|going on)"
          r"|\bso (?:i|he|she) (?:don'?t|won'?t|never) wake up|\b(?:take|taking|swallow)\s+all\s+(?:of\s+)?"
          rf"(?:my|his|her|the)\s+{DRUG}"),
    # cardiac: chest pain/pressure/tightness now; with a companion (breathless, sweating, arm/jaw, nausea) even when
    # called mild; bare, unless mild or explained ("from a cold", "after the gym"); "having a heart attack".
    _flag("cardiac", CHEST_SYMPTOM, needs=CARDIAC_COMPANION),
    _flag("cardiac", rf"\b{NOW_HAVING}(?:heart attack|cardiac arrest|mi)\b|\b(?:acute\s+)?stemi\b"),
    _flag("cardiac", CHEST_SYMPTOM, benign=MUSCULAR + r"|\bheartburn|\bindigestion|\bacid reflux"),
    # stroke: FAST (face, arm, speech), sudden confusion/weakness/vision loss, worst-ever or thunderclap headache.
    _flag("stroke", _any(FACE, SPEECH, ONE_SIDE_WEAK)),
    _flag("stroke", rf"\b{NOW_HAVING}(?:stroke|strok|tia|mini[- ]stroke)\b|\bcode stroke|\b{SUDDEN}\s+{W}{{0,2}}?"
          rf"(?:confus\w*|disorient\w*|weak\w*|numb\w*|(?:loss of|lost)\s+(?:vision|sight)|blind\w*|{CANT}\s+(?:see|"
          r"walk|speak|talk|understand))"),
    _flag("stroke", rf"\b(?:worst|worse)\s+headache\s+(?:of\s+{WHO}\s+life|ever|i'?ve ever)|\bthunderclap|"
          rf"\b{SUDDEN}\s+{W}{{0,2}}?(?:{STRONG}|explosive|terrible|blinding)\s+headache"),
    # anaphylaxis: throat/tongue swelling or closing; lips/face swelling, wheeze or breathing trouble after an
    # allergen (sting, food, drug).
    _flag("anaphylaxis", r"\b(?:throat|tongue|airway)\s+(?:is\s+|feels?\s+(?:like\s+(?:it'?s|its|it is)\s+)?|"
          r"has\s+|started\s+|starting\s+|keeps\s+)?(?:swell\w*|swollen|closing|clos\w* up)|\b(?:swollen|swelling)\s+"
          r"(?:of\s+)?(?:the\s+|my\s+|his\s+|her\s+)?(?:throat|tongue)|\banaphyla\w*|\bangio-?o?edema"),
    _flag("anaphylaxis", r"\b(?:lips?|face|mouth|eyes|tongue|throat)(?:\s+and\s+(?:lips?|tongue|face|throat))?\s+"
          r"(?:is\s+|are\s+|feels?\s+|has\s+|have\s+|started\s+)?(?:swell\w*|swollen|puff\w*\s+up|tight\w*)|"
          + CANT_BREATHE + r"|\bwheez\w*|\bhard to (?:swallow|breathe)|\bhypotens\w*", needs=ALLERGEN),
    # overdose/poisoning: a past ingestion of an excess (5+ tablets, "too many", "a whole bottle"), an overdose
    # taken, or anyone swallowing batteries, magnets, chemicals or medicines not theirs. Limits and "what if" are not.
    _flag("overdose", rf"\b(?:took|taken|swallowed|ate|eaten|drank|downed|necked)\s+{W}{{0,2}}?{AMOUNT}\s+(?:of\s+)?"
          rf"{W}{{0,3}}?{DRUG}|\boverdos(?:ed|ing)\b|\b(?:took|taken|take)\s+an?\s+overdose|\bingest\w*\s+(?:of\s+)?"
          rf"{W}{{0,4}}?{POISON}|\bpoisoned\b"),
    _flag("overdose", rf"\b(?:swallow\w*|ate|eaten|drank|drunk|drinking|ingest\w*|got into|chewed)\s+{W}{{0,3}}?"
          rf"{POISON}|\b(?:child|kid|son|daughter|toddler|baby|boy|girl|\d+\s*(?:yo|y/o|year old|yr old))\s+"
          rf"{W}{{0,3}}?(?:swallowed|ate|drank)\s+(?:something|a thing|an object|\w+ (?:pills?|tablets?))\b"),
    # pregnancy: heavy bleeding, severe abdominal pain, pre-eclampsia signs or no fetal movement while pregnant.
    _flag("pregnancy", rf"\b(?:heavy|heavily|lots of|a lot of|gushing|soaking|soaked)\s+{W}{{0,3}}?(?:bleed\w*|"
          rf"blood|pads?)|\bbleed\w*\s+(?:heavily|a lot|badly)|\b{STRONG}\s+{W}{{0,6}}?{BELLY}|\b(?:really|very) bad"
          rf"\s+{W}{{0,2}}?{BELLY}|\bblurr\w* vision|\bvision\s+(?:is\s+)?blurr\w*|\bseeing (?:spots|stars|flashing)|"
          r"\b(?:baby|bump)\s+(?:has\s+)?(?:stopped|isn'?t|is not|not|hasn'?t)\s+(?:been\s+)?mov\w*",
          needs=rf"\b{PREGNANT}"),
    # diabetic emergency: low sugar, or a diabetic, with confusion/drowsiness/seizure/unresponsiveness; DKA signs.
    _flag("diabetic", ALERT, needs=rf"{LOW_SUGAR}|\bdiabet\w*|\binsulin\b|\bt1d\b"),
    _flag("diabetic", r"\b(?:dka|ketoacidosis|hhs)\b|\bfruity breath|\bketones?\s+(?:are\s+|is\s+)?(?:very\s+)?high"),
    # head injury: a blow to the head with vomiting, confusion, drowsiness, loss of consciousness or anticoagulants.
    _flag("head_injury", HEAD_HIT, needs=HEAD_RED),
    # sepsis/meningitis: a rash that does not fade under a glass; named sepsis/meningitis; fever with stiff neck,
    # light sensitivity, confusion, drowsiness, fast breathing, low blood pressure or feeling like dying.
    _flag("sepsis", rf"\bnon-?blanch\w*|\bpetechia\w*|\bpurpur\w*|\b(?:rash|spots|blotches|marks)\s+{W}{{0,2}}?"
          rf"(?:that\s+)?{NOT}\s+(?:fade|disappear|go away|blanch)\w*|\bglass test|\b(?:suspected\s+)?(?:sepsis|"
          r"septic shock|meningitis|meningococcal)\b"),
    _flag("sepsis", r"\bstiff neck|\bneck (?:is )?stiff\w*|\bphotophob\w*|\blight hurts|\bconfus\w*|\bdrows\w*|"
          r"\bfloppy|\bbreathing (?:really |very )?fast|\brapid breathing|\bmottled|\bfeel(?:s|ing)? like (?:i'?m|i am|"
          r"he'?s|she'?s) (?:going to |gonna )?di(?:e|ing)|\bbp\s*(?:of\s*)?[4-8]\d\s*/|\bhypotens\w*",
          needs=rf"\b{FEVER}"),
    # unconsciousness/seizure: unresponsive, can't wake, collapsed; a seizure over 5 minutes, not stopping,
    # happening now, or a first seizure.
    _flag("unconscious", UNRESPONSIVE + rf"|\b{SEIZURE}\s+{W}{{0,4}}?(?:for|over|more than|>|longer than)\s*"
          rf"(?:[5-9]|\d\d|five|six|seven|eight|nine|ten|fifteen|twenty)\s*(?:\+\s*)?min|\b{SEIZURE}\s+{W}{{0,3}}?"
          rf"{NOT}\s+stop\w*|\bstatus epilepticus|\b(?:having|'s having|is having|started having)\s+(?:a\s+)?"
          rf"(?:seizure|fit|convulsion)|\b(?:is|'s|are|started|keeps)\s+{W}?(?:fitting|seizing|convulsing)|"
          r"\bfirst (?:ever )?seizure"),
    # breathing: can't breathe, gasping, blue lips, choking, not breathing, SpO2 under 92%, can't finish sentences,
    # severe asthma; "can't catch my breath" unless mild or explained ("after running").
    _flag("breathing", CANT_BREATHE + r"|\b(?:blue|bluish|blueish|grey|gray|purple)\s+lips|\blips\s+(?:are\s+|look\s+|"
          r"looks\s+|turning\s+|going\s+|turned\s+|went\s+)*(?:blue\w*|grey|gray|purple)|\b(?:turning|went|gone|going)"
          rf"\s+blue|\bchok(?:ing|ed)\b|\b(?:stopped|{NOT})\s+breathing|\b(?:spo2|sats?|o2 sats?|oxygen(?: saturation|"
          r" level)?)\s*(?:of|is|at|:|=|was)?\s*(?:[4-8]\d|9[01])\b|\b(?:severe|acute severe|life-threatening)\s+"
          r"asthma|\binhaler\s+(?:is\s*n'?t|isnt|is not|not|does\s*n'?t|doesnt|won'?t|did\s*n'?t)\s+(?:help|work)\w*"),
    _flag("breathing", rf"\b{CANT}\s+catch\s+{WHO}\s+{BREATHE}", benign=MUSCULAR),
    # bleeding: won't stop, spurting/pouring, vomiting blood, black stools, coughing up blood in quantity; heavy
    # bleeding unless menstrual.
    _flag("bleeding", rf"\b(?:bleed\w*|blood)\s+{W}{{0,3}}?{NOT}\s+(?:stop\w*|slow\w*)|\b{CANT}\s+stop\s+(?:the\s+)?"
          rf"(?:bleed\w*|blood)|\b{NOT}\s+stop\w*\s+bleed\w*|\bblood\s+(?:is\s+)?(?:spurting|pumping|pouring|gushing|"
          r"squirting)|\b(?:spurting|pouring|gushing|pumping)\s+(?:out\s+)?blood|\b(?:vomit\w*|throw\w*\s+up|threw\s+"
          r"up|puk\w*)\s+(?:up\s+)?blood|\b(?:haematemes|hematemes|melaena|melena)\w*|\bblack (?:poo|stool|tarry)\w*|"
          r"\b(?:cough\w*|spit\w*)\s+(?:up\s+)?(?:lots of|a lot of|loads of|large amounts of|mouthfuls of|cups? of)\s+"
          r"blood"),
    _flag("bleeding", r"\b(?:heavy|heavily|severe|profuse\w*|uncontroll\w*|massive|major|large)\s+(?:[\w'-]+\s+)?"
          r"(?:bleed\w*|haemorrhage|hemorrhage|blood loss)|\bbleed\w*\s+(?:heavily|profusely|everywhere)",
          benign=MENSTRUAL),
    # severe abdominal pain: strong words ("severe", "excruciating", "worst"), or a rigid belly.
    _flag("abdominal", rf"\b{STRONG}\s+{W}{{0,5}}?{BELLY}|\b{BELLY}\s+(?:pain|ache|cramps?)\s+(?:is\s+)?{STRONG}|"
          rf"\b{BELLY}\s+(?:is\s+)?(?:rigid|hard as a board|board-?like)|\brigid\s+(?:{BELLY}|abdo)|\bperitonism|"
          r"\bguarding", benign=MENSTRUAL),
)

# ---- cues that clear a finding (see the module docstring) ----
_NEG = re.compile(r"\b(?:not|never|without|denies|denied|deny|denying|negative for|free of|absence of|nor|neither|"
                  r"no\b(?!\s*[,.!?;:])|ruled out)\b|n't\b|\b(?:dont|doesnt|isnt|wasnt|didnt|hasnt|havent|arent)\b")
_LIST_NEG = re.compile(r"(?:\bno|denies|denied|deny|denying|without|negative for|free of|absence of)$")
_PSEUDO_NEG = re.compile(r"\b(?:not sure|no idea|not only|not just|no doubt|no longer|no one|nobody|no matter|"
                         r"not (?:feeling )?(?:well|good|great|ok|okay|right|normal|myself)|dont know|not certain|"
                         r"(?:do|does|did)\s*n'?t know|(?:is|does|has|did|wo|ca)n'?t (?:help|stop|work)\w*|"
                         r"not (?:help|stop|work)\w*|can'?t tell|no better)\b")
_NEG_END = re.compile(r"[.;:!?\n]|\b(?:but|however|although|though|yet|except|apart from|aside from|now|still|"
                      r"because|since|which|who|whereas|while|present\w*|c/o|complain\w*|i|i'm|im|i've|he|he's|"
                      r"she|she's|they|they're|we|it's)\b")
_HISTORY_BEFORE = re.compile(r"\b(?:history of|hx of|h/o|pmh|past medical history|prior|previous(?:ly)?|used to)\b")
_HISTORY_AFTER = re.compile(r"\b(?:(?:\d+|a|one|a few|few|several|many|two|three|four|five|six|ten)\s+)?(?:weeks?|"
                            r"wks?|months?|years?|yrs?|decades?)\s+(?:ago|back)\b|\blast (?:week|month|year|summer|"
                            r"winter|spring|autumn|fall)\b|\b(?:in|back in)\s+(?:19|20)\d\d\b|\bas an? (?:child|kid|"
                            r"teen\w*|baby|toddler)\b|\bwhen (?:i|he|she) was (?:a |little|young)")
_CHRONIC = re.compile(r"\bfor\s+(?:the\s+)?(?:last|past)?\s*(?:\d+|a few|few|several|many|two|three|some)?\s*"
                      r"(?:weeks|months|years)\b|\bfor (?:a )?(?:weeks|months|years)\b|\bon and off\b|\boff and on\b|"
                      r"\bsometimes\b|\boccasionally\b|\boften\b|\bevery (?:day|night|morning|afternoon|evening|time|"
                      r"week|month)\b|\bstable angina\b|\bchronic\b")
_HYPOTHETICAL = re.compile(r"\bif\s+(?:someone|somebody|anyone|a person|a child|a kid|a baby|you|your|u|one|people|"
                           r"they)\b|\b(?:someone|somebody|people|a person|anyone)\s+(?:who|that|with)\b|\bin case\b|"
                           r"\bwhat happens (?:if|when)\b|\bwhen (?:someone|somebody|you|a person)\b")
_QUESTION_START = re.compile(r"^\W*(?:what|what's|whats|how|which|why|when|where|who|is|are|can|could|does|do|"
                             r"should|would|will|any|define|explain|tell me|info|information)(?![\w'])")
_TOPIC = re.compile(r"\b(?:signs? of|symptoms? of|warning signs?|causes?|mean|means|difference|prevent\w*|risks? of|"
                    r"recogni[sz]e|treat\w*|manag\w*|diagnos\w*|protocol|guidelines?|differential|used for|"
                    r"definition|statistics|rates? of|increase|approach to|workup|work-up|pathophysiology)\b")
_SUBJECT = re.compile(r"\b(?:i|i'm|im|i've|ive|i'd|my|we|we're|our|he|he's|hes|she|she's|shes|his|him|her|"
                      r"they're|pt|patient)\b|\b\d+\s?(?:yo|y/o|yr|[mf])\b")
_RESOLVED = re.compile(r"\b(?:gone now|went away|resolved|settled|passed(?! out| away)|pain-? ?free|back to normal|"
                       r"then was fine|fine now|(?:has|have|had|it'?s|its|is) (?:all )?gone(?: away| now)?"
                       r"(?=\s*(?:[,.;!?]|$|and\b|but\b))|(?:am|i'm|im|feel|feels|felt|feeling|was|is)\s+(?:fine|ok|"
                       r"okay|better|normal)\s+(?:now|since|after|afterwards))\b")
_ONGOING = re.compile(r"\b(?:still|again|right now|came back|coming back|keeps?|getting worse|worse now|won'?t stop)\b")
_MILD = re.compile(r"\b(?:a bit|a little|a bit of|slight\w*|mild\w*|minor|little|small)\s+(?:of\s+)?(?:[\w'-]+\s+)?$")
_IDIOMS = re.compile(r"\bkill(?:ing)? me\b|\bdying (?:to|for|of laughter|laughing)\b|\bdied laughing\b|"
                     r"\b(?:die|dying) (?:for|of|from) (?:a |an |some )?(?:cup|coffee|tea|pizza|beer|drink|chocolate|"
                     r"laughter|laughing|embarrassment|shame|boredom|curiosity)\b|\b(?:gave|give|giving|nearly gave) "
                     r"(?:me|him|her) a heart attack\b|\bchok(?:ing|ed) on (?:all )?(?:this|that|the|my|these) "
                     r"(?:paperwork|work|workload|emails?|tears|words|emotions?|debt)\b")
_CLAUSE_END = re.compile(r"[,;:.!?\n]|\b(?:but|now|and now)\b")
_SENTENCE_END = re.compile(r"[!?;\n]+|(?<!\d)\.+|\.+(?!\d)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                              "\u2013": "-", "\u2014": "-"})
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff\ud800-\udfff]")

# Red flags that stay urgent when the writer says they have passed (TIA, delayed poisoning, head injury, crisis).
PERSISTENT = frozenset({"stroke", "suicide", "overdose", "head_injury"})



def _call(alternative: str = "") -> str:
    return f"Call your local emergency number now (911 in the US, 112 in Europe, 999 in the UK){alternative}. "


# What is shown first when ``urgent``: plain words for patients, the red flag and first steps for clinicians.
# General first aid only: never an individual drug dose.
MESSAGES: dict[str, dict[Audience, str]] = {
    "cardiac": {
        Audience.PATIENT: "This could be a heart attack. " + _call() + "Stop what you are doing and sit down; do not "
        "drive yourself to hospital. Unlock the door, and follow the emergency operator's advice.",
        Audience.CLINICIAN: "Red flag: possible acute coronary syndrome. Needs emergency assessment now: activate the "
        "emergency pathway; 12-lead ECG within 10 minutes; continuous monitoring and IV access; manage per local ACS "
        "protocol.",
    },
    "stroke": {
        Audience.PATIENT: "These can be signs of a stroke. " + _call() + "Do this even if the symptoms go away. Note "
        "the time they started, and do not give food, drink or medicines.",
        Audience.CLINICIAN: "Red flag: possible acute stroke/TIA or subarachnoid haemorrhage. Needs emergency "
        "assessment now: activate the stroke pathway; record last-known-well time; urgent brain imaging; check "
        "glucose; nil by mouth until swallow assessed.",
    },
    "suicide": {
        Audience.PATIENT: "I'm really sorry you're going through this, and you don't have to face it alone. If you "
        "might act on these thoughts, or someone else is in danger, call your local emergency number now (911, 112, "
        "999). You can talk to someone right now: call or text 988 (Suicide & Crisis Lifeline, US) or call 116 123 "
        "(Samaritans, UK and Ireland), or your local crisis line. Stay with someone you trust and keep away from "
        "anything you could use to hurt yourself.",
        Audience.CLINICIAN: "Red flag: suicidal ideation or self-harm. Needs urgent risk assessment now: ask directly "
        "about intent, plan and means; do not leave the person alone; remove access to means; involve the crisis or "
        "liaison psychiatry team; emergency services if imminent risk.",
    },
    "anaphylaxis": {
        Audience.PATIENT: "This could be anaphylaxis, a severe allergic reaction. " + _call() + "If an adrenaline "
        "(epinephrine) auto-injector has been prescribed, use it now as instructed. Lie down with legs raised, or sit "
        "up if breathing is hard.",
        Audience.CLINICIAN: "Red flag: possible anaphylaxis. Needs emergency treatment now: remove the trigger; "
        "IM adrenaline per anaphylaxis guideline; airway, breathing, circulation; high-flow oxygen; IV fluids; "
        "repeat as per protocol.",
    },
    "overdose": {
        Audience.PATIENT: "This could be a poisoning or overdose. " + _call(" or your poison centre (US "
        "1-800-222-1222)") + "Do this even if there are no symptoms yet: some poisons cause harm hours later. Do not "
        "try to make anyone vomit; keep the packet or container to show.",
        Audience.CLINICIAN: "Red flag: possible overdose or poisoning. Needs emergency assessment now: ABC; establish "
        "substance, amount and time of ingestion; contact poisons information service; timed levels and antidote "
        "per toxicology guidance.",
    },
    "breathing": {
        Audience.PATIENT: "Severe breathing difficulty is an emergency. " + _call() + "Sit upright and loosen tight "
        "clothing. If someone is choking and cannot cough, speak or breathe, give back blows and abdominal thrusts "
        "(chest thrusts for a baby) as the operator tells you.",
        Audience.CLINICIAN: "Red flag: respiratory compromise. Needs emergency assessment now: airway, breathing "
        "(SpO2, respiratory rate, work of breathing); oxygen to target saturations; escalate early to critical care; "
        "treat the cause per protocol.",
    },
    "bleeding": {
        Audience.PATIENT: "Heavy bleeding is an emergency. " + _call() + "For a wound, press firmly on it with a clean "
        "cloth and keep pressing; add more cloth on top rather than removing it. If vomiting or coughing blood, sit "
        "up and lean forward.",
        Audience.CLINICIAN: "Red flag: major haemorrhage. Needs emergency assessment now: direct pressure/haemostasis; "
        "large-bore IV access; group and crossmatch; activate the major haemorrhage protocol if unstable; review "
        "anticoagulants.",
    },
    "sepsis": {
        Audience.PATIENT: "A fever with these signs can be sepsis or meningitis, which get worse fast. " + _call() +
        "Do not wait for a rash to appear or to get worse.",
        Audience.CLINICIAN: "Red flag: possible sepsis/meningococcal disease. Needs emergency assessment now: sepsis "
        "screen and escalation; cultures then IV antibiotics within 1 hour per local guideline; lactate; fluids.",
    },
    "pregnancy": {
        Audience.PATIENT: "This could be a pregnancy emergency. " + _call(" or your maternity unit") + "Lie on your "
        "side and keep any pads to show.",
        Audience.CLINICIAN: "Red flag: obstetric emergency (haemorrhage, ectopic, pre-eclampsia or fetal compromise). "
        "Needs emergency assessment now: ABC; IV access; involve obstetrics; exclude ectopic in early pregnancy; "
        "BP and urine protein; fetal monitoring where viable.",
    },
    "unconscious": {
        Audience.PATIENT: "Someone who is unresponsive or having a long seizure needs help now. " + _call() + "If "
        "they are not breathing normally, start CPR (push hard and fast in the centre of the chest) as the operator "
        "tells you. If they are breathing, lay them on their side. During a seizure, move hard objects away, put "
        "nothing in their mouth, and time it.",
        Audience.CLINICIAN: "Red flag: reduced consciousness or prolonged seizure. Needs emergency management now: "
        "ABC; check glucose; recovery position/airway protection; treat status epilepticus per protocol; "
        "escalate to critical care.",
    },
    "diabetic": {
        Audience.PATIENT: "This could be a diabetic emergency. " + _call() + "If the person is awake and can swallow "
        "safely, give a sugary drink or glucose; never give food or drink to someone who is drowsy or unconscious.",
        Audience.CLINICIAN: "Red flag: diabetic emergency (hypoglycaemia with neuroglycopenia, DKA or HHS). Needs "
        "emergency treatment now: capillary glucose and ketones; treat hypoglycaemia per protocol; venous gas; "
        "DKA/HHS pathway.",
    },
    "abdominal": {
        Audience.PATIENT: "Severe stomach pain like this needs urgent care. " + _call(" or go to the emergency "
        "department") + "Do not eat or drink until you have been seen.",
        Audience.CLINICIAN: "Red flag: acute abdomen. Needs emergency assessment now: ABC and observations; analgesia; "
        "bloods including lactate; pregnancy test where relevant; urgent surgical review and imaging.",
    },
    "head_injury": {
        Audience.PATIENT: "After a head injury, these signs need a hospital check now. " + _call(" or go to the "
        "emergency department") + "Do not leave the person alone, and do not let them drive.",
        Audience.CLINICIAN: "Red flag: head injury with high-risk features. Needs emergency assessment now: GCS and "
        "neuro observations; CT head per head-injury guideline; review anticoagulation.",
    },
}


@dataclass(frozen=True)
class _Scan:
    """The scanned text: ``raw`` (a bounded copy of the input) and ``text`` (its lower-cased twin of the same
    length, so offsets in ``text`` slice ``raw``), with the sentence starts and the message-level resolution cue."""

    raw: str
    text: str
    sentence_starts: tuple[int, ...]
    resolved: bool
    _general: dict[tuple[int, bool], bool] = field(default_factory=dict)  # (sentence, strict) -> informational

    @classmethod
    def of(cls, message: str) -> _Scan:
        raw = message
        if len(message) > HEAD_CHARS + TAIL_CHARS:
            raw = message[:HEAD_CHARS] + "\n" + message[-TAIL_CHARS:]
        text = raw.lower()
        if len(text) != len(raw):  # a few characters lower-case to two ('İ'): keep the offsets aligned
            text = "".join(c.lower() if len(c.lower()) == 1 else c for c in raw)
        text = _CONTROL.sub(" ", text.translate(_APOSTROPHES))
        text = _IDIOMS.sub(lambda m: " " * len(m.group()), text)
        starts = (0, *(m.end() for m in _SENTENCE_END.finditer(text)))
        resolved = bool(_RESOLVED.search(text)) and not _ONGOING.search(text)
        return cls(raw, text, starts, resolved)

    def find(self, pattern: re.Pattern[str], category: str, benign: re.Pattern[str] | None) -> re.Match[str] | None:
        """The first match of ``pattern`` that no cue clears."""
        for n, match in enumerate(pattern.finditer(self.text)):
            if n == MAX_FINDINGS:
                break
            if not self._cleared(match.start(), match.end(), category, benign):
                return match
        return None

    def _cleared(self, start: int, end: int, category: str, benign: re.Pattern[str] | None) -> bool:
        i = bisect.bisect_right(self.sentence_starts, start) - 1
        s0 = self.sentence_starts[i]
        s1 = self.sentence_starts[i + 1] if i + 1 < len(self.sentence_starts) else len(self.text)
        before = self.text[max(s0, start - CONTEXT_CHARS):start]
        cuts = list(_CLAUSE_END.finditer(before))
        clause_before = before[cuts[-1].end():] if cuts else before
        after = self.text[end:min(s1, end + CONTEXT_CHARS)]
        cut = _CLAUSE_END.search(after)
        clause_after = after[:cut.start()] if cut else after
        if _negated(before, _NEG, pseudo=_PSEUDO_NEG) or _negated(before, _HISTORY_BEFORE, limit=6):
            return True
        if _HISTORY_AFTER.search(clause_after) or _HYPOTHETICAL.search(before):
            return True
        if category != "suicide" and _CHRONIC.search(clause_before + " " + clause_after):
            return True
        if self._informational(i, s0, s1, strict=category == "suicide"):
            return True
        if self.resolved and category not in PERSISTENT:
            return True
        if benign is None:
            return False
        return bool(_MILD.search(before[-40:]) or benign.search(clause_before + " " + clause_after))

    def _informational(self, i: int, s0: int, s1: int, strict: bool) -> bool:
        """Sentence ``i`` asks about the topic in general: no first/third-person subject, and a topic phrase
        (``strict``) or a topic phrase or question form (otherwise)."""
        key = (i, strict)
        if key not in self._general:
            sentence = self.text[s0:min(s1, s0 + CONTEXT_CHARS * 5)]
            self._general[key] = not _SUBJECT.search(sentence) and bool(
                _TOPIC.search(sentence) or (not strict and _QUESTION_START.match(sentence)))
        return self._general[key]


def _negated(before: str, cue: re.Pattern[str], limit: int = 5, pseudo: re.Pattern[str] | None = None) -> bool:
    """NegEx: the last ``cue`` in ``before`` scopes over the finding that follows unless a clause boundary or more
    than ``limit`` words come between. Negation cues that start a list ("no", "denies", "without") and history cues
    reach 10 (history: ``limit``) words and carry across commas."""
    spans = [m.span() for m in pseudo.finditer(before)] if pseudo else []
    cues = [m for m in cue.finditer(before) if not any(a <= m.start() < b for a, b in spans)]
    if not cues:
        return False
    between = before[cues[-1].end():]
    is_negation = cue is _NEG
    is_list = not is_negation or bool(_LIST_NEG.search(before[:cues[-1].end()]))
    if _NEG_END.search(between) or (not is_list and "," in between):
        return False
    return len(between.split()) <= (10 if is_list and is_negation else limit)


def triage(text: str, audience: Audience = Audience.PATIENT) -> Triage:
    """Check ``text`` for red flags; an urgent finding carries the emergency message for ``audience``.

    Scans at most ``HEAD_CHARS + TAIL_CHARS`` characters; odd input (empty, control characters, other scripts) is
    simply not urgent. Raises ``TypeError`` for a ``text`` that is not a string and ``ValueError`` for an unknown
    audience."""
    if not isinstance(text, str):
        raise TypeError(f"triage expects the message as str, got {type(text).__name__}")
    audience = Audience(audience)
    scan = _Scan.of(text)
    if not scan.text.strip():
        return Triage(urgent=False)
    for flag in RED_FLAGS:
        hit = scan.find(flag.pattern, flag.category, flag.benign)
        if hit is None:
            continue
        matched = scan.raw[hit.start():hit.end()].strip()
        if flag.needs is not None:
            companion = scan.find(flag.needs, flag.category, None)
            if companion is None:
                continue
            matched = f"{matched} + {scan.raw[companion.start():companion.end()].strip()}"
        return Triage(urgent=True, category=flag.category, message=MESSAGES[flag.category][audience],
                      matched=matched)
    return Triage(urgent=False)
