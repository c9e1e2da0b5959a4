"""The transparent red-flag rules: regular expressions per emergency category, each explaining its verdict.

``red_flags(text, context)`` returns every ``RuleHit`` (category and the text that triggered it) in ``RED_FLAGS``
order, which is the order of priority. A rule's ``pattern`` must be found in the message and not cleared by a cue
(``assistant.safety.cues``); its ``needs`` companion (if set) must be found, not cleared, in the message or in the
conversation's earlier user turns (``context``): "my lips are swelling" after "I just took amoxicillin" is
anaphylaxis. Patterns are written over a lower-cased copy with apostrophes normalised, for classes of wording
(lay, typo, clinical abbreviation, third person), one block per category with its rule in the comment above it.

Judgment calls: a chest pain the writer says has gone ("after a workout yesterday, gone now, muscle strain?") is
not urgent (the answer still carries a safety net, ``assistant.safety.triage``); overdose limits and "what happens
if someone takes too much" are information, while a past ingestion of 5+ tablets, "too many", "a whole bottle",
"an overdose", or a child swallowing medicines, batteries, magnets or household chemicals is urgent (a double
dose, toothpaste or gum is not); suicide rules fire on jokes like "I want to die lol" on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.safety.cues import Scan


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
                  r"squeezing|crushing|burning|constriction|tearing|ripping")
ARM_JAW = r"(?:arms?|jaw|shoulder|neck|back)"
BELLY = r"(?:stomach|belly|abdomen|abdominal|abdo|tummy|tummie|pelvic|pelvis|groin)"
STRONG = r"(?:severe|severely|excruciating|unbearable|agoni[sz]ing|worst|extreme|intense|crippling|10/10)"
SUDDEN = r"(?:sudden\w*|all of a sudden|out of nowhere|acute(?:ly)?(?: onset)?|abrupt\w*)"
# "hay fever", "cabin fever" and the yellow fever jab are no fever
FEVER = _any(r"(?<!hay )(?<!cabin )(?<!yellow )fever\w*|febrile|feverish|pyrexi\w*",
             r"high (?:temp\w*|temperature)|burning up|rigou?rs",
             r"temp\w*\s*(?:of|is|was|:)?\s*(?:3[89]|4[0-2]|10[2-7])(?:\.\d)?")
# drowsiness as a medicine's property ("non-drowsy", "the least drowsy antihistamine") is no symptom
DROWSY = r"(?<!non-)(?<!non )(?<!least )(?<!less )drows\w*"
PREGNANT = _any(r"pregnan\w*|preggers|\d+\s*(?:weeks?|wks?)\s*(?:pregnant|gestation)|g\d\s*p\d",
                r"(?:at|@)\s*\d+\s*(?:weeks?|wks?)\b",
                # "I'm 37 weeks", "she's 30 wks along", "36+4": a gestation said without the word
                r"\b(?:i'?m|im|i am|she'?s|she is|(?:wife|partner|girlfriend|daughter) is)\s+(?:now\s+)?"
                r"(?:[5-9]|[1-3]\d|4[0-2])\s*(?:weeks?|wks?)\b(?!\s+(?:old|ago|post))",
                r"\b(?:[5-9]|[1-3]\d|4[0-2])\s*(?:weeks?|wks?)\s+(?:along|gone)\b", r"\b(?:[12]\d|3\d|4[0-2])\+[0-6]\b")
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
    # "a heavy chest day" at the gym is a workout, not a symptom
    rf"\b(?:tight|heavy|crushing|painful|squeezing)\s+{CHEST}\b(?!\s+(?:days?|workouts?|sessions?|press\w*|fl(?:y|ies)|"
    r"exercises?|routines?|muscles?|training))",
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
    # "not responding to salbutamol" is a treatment failing, not a person unresponsive ("not responding to me" is)
    rf"\b(?:{NOT}|no longer|stopped)\s+(?:responding|responsive|respond|waking(?: up)?|wake(?: up)?|coming round|"
    r"coming to)\b(?!\s+to\s+(?!(?:me|us|him|her|them|you|voices?|pain|touch|sounds?|noise|his name|her name|"
    r"their name|anything|anyone|anybody|commands|stimul\w*|shaking|calls?|questions|verbal\w*)\b))",
    rf"\b{CANT}\s+(?:wake|rouse)\s+(?:him|her|them|my|his|\w+)\b",
)
SEIZURE = r"(?:seizure|seizing|fitting|fit|convuls\w*)"
LOW_SUGAR = _any(
    r"\bhypos?\b", r"\bhypoglyc\w*", r"\blow (?:blood )?(?:sugars?|glucose|bgl?|bm)\b",
    r"\b(?:sugars?|glucose|bgl?|bm|cbg|meter)\s+(?:levels?\s+|reading\s+)?(?:is|was|of|at|reads|says|:)?\s*"
    r"(?:[0-2](?:\.\d)?|3\.[0-4]|[1-5]\d|lo|low)\b(?!\s*(?:years|%|\.\d))",
)
ALERT = _any(rf"\b(?:confus\w*|disorient\w*|not making sense|{DROWSY}|acting (?:drunk|strange|weird)|floppy|"
             rf"slurr\w*|{SEIZURE})", UNRESPONSIVE)
ALLERGEN = _any(r"\b(?:sting|stung|bee|wasp|hornet|peanuts?|nuts?|shellfish|shrimp|prawns?|ate|eating)\b",
                r"\b(?:after taking|allerg\w*|antibiotics?|amoxicillin|penicillin|ibuprofen|aspirin|injection)\b",
                r"\b(?:vaccine|reaction)\b")
CANT_BREATHE = _any(
    rf"\b{CANT}\s+{BREATHE}\b(?!\s+(?:through|thru)\s+(?:it|{WHO}\s+(?:nose|nostrils?)|(?:my\s+|the\s+)?nose|"
    r"one))", r"\bgasping\b",
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
    r"\b(?:walked|ran|bumped|banged|smacked|went|crashed)\s+(?:straight\s+|right\s+|head-?first\s+)?into\s+"
    r"(?:a|an|the|my|his|her|their|our|\w+'s)\s+(?:[\w'-]+\s+){0,2}?(?:beam|door\w*|wall|post|pole|lamp-?post|shelf|"
    r"cupboard|cabinet|frame|girder|sign|branch|windscreen|windshield)",
)
HEAD_RED = _any(rf"\b(?:vomit\w*|throw\w* up|threw up|thrown up|been sick|puk\w*|confus\w*|{DROWSY}|sleepy)",
                r"\b(?:knocked out|passed out|blacked out|lost consciousness|seiz\w*|fitting|slurr\w*|clear fluid)",
                r"\b(?:unequal pupils|anticoag\w*|warfarin|apixaban|rivaroxaban|edoxaban|dabigatran)",
                r"\bpupils?\s+(?:are\s+|is\s+|look\s+)?(?:different|unequal|uneven|not the same)|"
                r"\bone pupil\s+(?:is\s+)?"
                r"(?:bigger|larger|smaller|wider|dilated)",
                r"\bblood thinners?", UNRESPONSIVE,
                # a skull-base fracture: clear or salty fluid from the nose or ears, bruising round the eyes
                r"\b(?:clear|watery|salty)\s+(?:[\w'-]+\s+){0,3}?(?:fluid|liquid|stuff|discharge|water|drip\w*)\s+"
                r"(?:[\w'-]+\s+){0,4}?(?:from|out of)\s+(?:[\w'-]+\s+){0,2}?(?:nose|nostrils?|ears?)\b",
                r"\b(?:nose|ears?)\s+(?:is\s+|are\s+|keeps?\s+)?(?:dripping|leaking|running|draining)\s+"
                r"(?:something\s+)?(?:clear|watery)",
                r"\b(?:eyes|both eyes)\s+(?:look\s+|are\s+|went\s+)?(?:bruised|black)|\bbruis\w*\s+(?:round|around|"
                r"under|behind)\s+(?:both|my|his|her|their|the)\s+(?:eyes|ears?)|\bpanda eyes|\braccoon eyes|"
                r"\bbattle'?s sign")
# Benign causes that clear a bare symptom (with a mild qualifier: see _MILD).
MUSCULAR = (r"\b(?:from|with)\s+(?:a|the|my|this)?\s*(?:cold|cough\w*|flu|workout|gym|exercise|running|lifting|"
            r"weights)\b|\bafter\s+(?:the\s+|a\s+|my\s+)?(?:gym|workout|exercise|running|a run|lifting|sport|"
            r"climbing)\b|\b(?:muscle|muscular) strain|\bpulled (?:a )?muscle|\boverdid|\b(?:when|if) (?:i|he|she|"
            r"you|they) press|\bpress(?:es|ing)? on (?:it|the|a|one)\b|\bclimbing stairs|\bstrain(?:ed|ing)?\b|"
            r"\bwhen (?:i|he|she|they|you) cough\w*|\b(?:has|have|having|got) (?:a |the )?(?:cold|flu)\b|"
            r"\bplaying (?:rugby|football|soccer|sports?|tennis|basketball|hockey|netball|cricket)\b|"
            r"\b(?:moving|lifting|carrying) (?:the |a |some |heavy )?(?:sofa|couch|furniture|boxes|bags)\b")
MENSTRUAL = r"\bperiods?\b|\bmenstru\w*"


@dataclass(frozen=True)
class RedFlag:
    """One rule: ``pattern`` found and not cleared by a cue, and (if set) ``needs`` found and not cleared anywhere
    in the message. ``benign``: causes that, like a mild qualifier just before it, clear a bare symptom in its
    clause; ``cause``: a cause that explains the finding when named anywhere in its sentence."""

    category: str
    pattern: re.Pattern[str]
    needs: re.Pattern[str] | None = None
    benign: re.Pattern[str] | None = None
    named: bool = False  # the pattern names a condition ("anaphylaxis", "DKA"): a management question clears it
    cause: re.Pattern[str] | None = None


def _flag(category: str, pattern: str, needs: str | None = None, benign: str | None = None,
          named: bool = False, cause: str | None = None) -> RedFlag:
    return RedFlag(category, re.compile(pattern), re.compile(needs) if needs else None,
                   re.compile(benign) if benign else None, named, re.compile(cause) if cause else None)


# Category order is priority: the first category with a finding names the red flag.
RED_FLAGS: tuple[RedFlag, ...] = (
    # suicide: a wish or plan to die, self-harm, "better off without me"; third person too ("kill herself").
    _flag("suicide", r"\bkill(?:ing)?\s+(?:my|him|her|them|your)\s?sel(?:f|ves)\b|\bkms\b|\b(?:cutting|hurting|"
                     r"harming|burning)\s+(?:my|him|her|them)\s?sel(?:f|ves)"),
    _flag("suicide", r"\b(?:want|wants|wanted|wanna|wish|wishes|plan\w*|ready|trying|tried)\s+(?:to\s+)?die\b|"
          r"\b(?:want|wants|wanna|going|gonna|plan\w*|ready|about|trying|tried)\s+(?:to\s+)?(?:end\s+(?:it\b|it all|"
          r"my life|his life|her life|their life|things|everything)|take\s+(?:my|his|her)\s+(?:own\s+)?life|not\s+"
          r"(?:be\s+)?(?:alive|here))|\bend(?:ing)?\s+(?:my|his|her)\s+(?:own\s+)?life"),
    _flag("suicide", r"\b(?:don'?t|dont|do not|doesn'?t|no longer)\s+want\s+to\s+(?:live|be alive|be here|exist|"
          r"wake up|go on)|\bbetter off\s+(?:dead|without (?:me|him|her|them))|\bbetter off\s+(?:if|when|once)\s+(?:i|"
          r"he|"
          r"she|they)\s+(?:was|were|am|is|'m|'s)?\s*(?:dead|gone|not here|not around|no longer here|never born)|"
          r"\b(?:want|wants|wanna|going|gonna|plan\w*|about|tempted|urges?|thinking about|thoughts? of)\s+(?:to\s+)?"
          r"(?:hurt|harm|cut|burn)\w*\s+(?:my|him|her|them)\s?sel(?:f|ves)\b|\bno (?:reason|point) (?:to|in) (?:live|"
          r"living|going on)"
          r"|\bso (?:i|he|she) (?:don'?t|won'?t|never) wake up|\b(?:take|taking|swallow)\s+all\s+(?:of\s+)?"
          rf"(?:my|his|her|the)\s+{DRUG}"),
    _flag("suicide", r"\bsuicid\w*|\bsucid\w*|\bsuicd\w*|\bself[- ]?harm\w*", named=True),
    # cardiac: chest pain/pressure/tightness now; with a companion (breathless, sweating, arm/jaw, nausea) even when
    # called mild; bare, unless mild or explained ("from a cold", "after the gym"); "having a heart attack".
    _flag("cardiac", CHEST_SYMPTOM, needs=CARDIAC_COMPANION),
    _flag("cardiac", rf"\b{NOW_HAVING}(?:heart attack|cardiac arrest|mi)\b"),
    _flag("cardiac", r"\b(?:acute\s+)?stemi\b|\bcardiac arrest\b", named=True),
    # cardiac arrest as bystanders tell it: no pulse, CPR or compressions under way
    _flag("cardiac", r"\b(?:no|can'?t (?:find|feel) (?:a|his|her|their|any)|cannot (?:find|feel) (?:a|his|her|their|"
          r"any))\s+pulse\b|\bpulseless\b|\b(?:doing|started|starting|giving|performing|begun|began|on)\s+"
          r"(?:cpr|(?:chest\s+)?compressions)\b"),
    _flag("cardiac", CHEST_SYMPTOM, benign=MUSCULAR + r"|\bheartburn|\bindigestion|\bacid reflux|\bgaviscon|"
                                                      r"\bantacids?|"
          r"\brennies?\b|\btums\b"),
    # stroke: FAST (face, arm, speech), sudden confusion/weakness/vision loss, worst-ever or thunderclap headache.
    _flag("stroke", _any(FACE, SPEECH, ONE_SIDE_WEAK),
          benign=r"\b(?:lying|lay|laid|slept|sleeping|sat|sitting|leaning)\s+on\s+(?:it|my|his|her|that)\b"),
    _flag("stroke", rf"\b{NOW_HAVING}(?:stroke|strok|tia|mini[- ]stroke)\b|\bcode stroke|\b{SUDDEN}\s+{W}{{0,2}}?"
          rf"(?:confus\w*|disorient\w*|weak\w*|numb\w*|(?:loss of|lost)\s+(?:vision|sight)|blind\w*|{CANT}\s+(?:see|"
          r"walk|speak|talk|understand))"),
    # sight lost in one eye, even for minutes (amaurosis fugax: a warning of stroke)
    _flag("stroke", r"\b(?:lost|loss of|losing|lose)\s+(?:all\s+|the\s+|my\s+|his\s+|her\s+)?(?:sight|vision)\s+"
          r"(?:in|of|from)\s+(?:my|his|her|their|one|the)\s+(?:left\s+|right\s+|one\s+)?eye\b|\bwent blind in "
          r"(?:my|his|her|one)\s+(?:left\s+|right\s+)?eye\b|\b(?:curtain|shade|blind)\s+(?:came|coming|come|"
          r"was pulled|pulled)\s+down\s+(?:over|across)\b"),
    _flag("stroke", rf"\b(?:worst|worse)\s+headache\s+(?:of\s+{WHO}\s+life|ever|i'?ve ever)|\bthunderclap|"
          rf"\b{SUDDEN}\s+{W}{{0,2}}?(?:{STRONG}|explosive|terrible|blinding)\s+headache"),
    # anaphylaxis: throat/tongue swelling or closing; lips/face swelling, wheeze or breathing trouble after an
    # allergen (sting, food, drug).
    _flag("anaphylaxis", r"\b(?:throat|tongue|airway)\s+(?:is\s+|are\s+|feels?\s+(?:like\s+(?:it'?s|its|it is)\s+)?|"
          r"has\s+|started\s+|starting\s+|keeps\s+)?(?:swell\w*|swollen|closing|clos\w* up)|\b(?:swollen|swelling)\s+"
          r"(?:of\s+)?(?:the\s+|my\s+|his\s+|her\s+)?(?:throat|tongue)"),
    _flag("anaphylaxis", r"\banaphyla\w*|\bangio-?o?edema", named=True),
    # lips, face, tongue or throat swelling with trouble breathing or swallowing, allergen named or not
    _flag("anaphylaxis", r"\b(?:lips?|face|mouth|tongue|throat)(?:\s+and\s+(?:lips?|tongue|face|throat|mouth))?\s+"
          r"(?:is\s+|are\s+|feels?\s+|has\s+|have\s+|started\s+|keeps?\s+)?(?:swell\w*|swollen|puff\w*\s+up)",
          needs=CANT_BREATHE + r"|\bwheez\w*|\b(?:hard|difficult|trouble|struggling|difficulty)\s+(?:to\s+)?"
          r"(?:swallow\w*|breath\w*)|\b(?:can'?t|cannot|unable to)\s+swallow"),
    _flag("anaphylaxis", r"\b(?:lips?|face|mouth|eyes|tongue|throat)(?:\s+and\s+(?:lips?|tongue|face|throat))?\s+"
          r"(?:is\s+|are\s+|feels?\s+|has\s+|have\s+|started\s+)?(?:swell\w*|swollen|puff\w*\s+up|tight\w*)|"
          + CANT_BREATHE + r"|\bwheez\w*|\bhard to (?:swallow|breathe)|\bhypotens\w*", needs=ALLERGEN),
    # overdose/poisoning: a past ingestion of an excess (5+ tablets, "too many", "a whole bottle"), an overdose
    # taken, or anyone swallowing batteries, magnets, chemicals or medicines not theirs. Limits and "what if" are not.
    # a weekly medicine (methotrexate) taken daily: a dangerous dosing error
    _flag("overdose", r"\b(?:weekly|once a week)\b[^.?!]{0,80}?\b(?:taking|took|taken|had|having|given|giving|gave)"
          r"\s+(?:it\s+|them\s+|this\s+|these\s+)?(?:every day|daily|each day)\b|\b(?:every day|"
          r"daily|each day)\b[^.?!]{0,40}?\b(?:instead of|rather than|not)\s+(?:weekly|once a week)\b"),
    _flag("overdose", rf"\b(?:took|taken|swallowed|ate|eaten|drank|downed|necked)\s+{W}{{0,2}}?{AMOUNT}\s+(?:of\s+)?"
          rf"{W}{{0,3}}?{DRUG}|\boverdos(?:ed|ing)\b|\b(?:took|taken|take)\s+an?\s+overdose|\bingest\w*\s+(?:of\s+)?"
          rf"{W}{{0,4}}?{POISON}|\bpoisoned\b"),
    _flag("overdose", rf"\b(?:swallow\w*|ate|eaten|drank|drunk|drinking|ingest\w*|got into (?:the|my|his|her|their|"
          rf"your|\w+'s)|chewed)\s+{W}{{0,3}}?{POISON}|\b(?:child|kid|son|daughter|toddler|baby|boy|girl|\d+\s*(?:yo|"
          rf"y/o|year old|yr old))\s+{W}{{0,3}}?(?:swallowed|ate|drank)\s+(?:something|a thing|an object|\w+ "
          r"(?:pills?|tablets?))\b",
          # a taste of a low-toxicity household product is not a poisoning (a battery, a magnet or bleach always is)
          benign=r"\b(?:a bit of|a little|a sip of|a drop of|a lick of|a taste of|a dab of|"
                 r"a small amount of)\s+(?:\w+\s+)?"
                 r"(?:mouthwash|toothpaste|hand (?:gel|saniti[sz]er)|washing[- ]?up liquid|dish soap|soap|shampoo)"),
    # a button battery or magnets swallowed, however the object is described ("one of those small flat round
    # batteries from the kitchen scales") and in either order ("the remote's battery is missing, I think he
    # swallowed it"): urgent even when the child seems well
    _flag("overdose", r"\b(?:swallow\w*|ingest\w*|ate|eaten|chew\w*|gulp\w*)\s+(?:[\w'-]+\s+){0,7}?"
          r"(?:batter(?:y|ies)|magnet\w*)\b|\b(?:batter(?:y|ies)|magnet\w*)\b[^?!]{0,120}?\b(?:swallow\w*|ingest\w*)"),
    # pregnancy: heavy bleeding, severe abdominal pain, pre-eclampsia signs or no fetal movement while pregnant.
    _flag("pregnancy", rf"\b(?:heavy|heavily|lots of|a lot of|gushing|soaking|soaked)\s+{W}{{0,3}}?(?:bleed\w*|"
          rf"blood|pads?)|\bbleed\w*\s+(?:heavily|a lot|badly)|\b{STRONG}\s+{W}{{0,6}}?{BELLY}|\b(?:really|very) bad"
          rf"\s+{W}{{0,2}}?{BELLY}|\bblurr\w* vision|\bvision\s+(?:is\s+)?blurr\w*|\bseeing (?:spots|stars|flashing)|"
          r"\b(?:baby|bump)\s+(?:has\s+)?(?:stopped|isn'?t|is not|not|hasn'?t)\s+(?:been\s+)?mov\w*",
          needs=rf"\b{PREGNANT}"),
    # waters breaking before 37 weeks (preterm rupture of membranes), the gestation said anywhere in the conversation
    # ("when the waters break", "if my waters go" ask ahead of time)
    _flag("pregnancy", r"(?<!when the )(?<!when my )(?<!when your )(?<!when her )(?<!if the )(?<!if my )(?<!if your )"
          r"(?<!if her )(?<!before the )(?<!before my )\bwaters?\s+(?:have\s+|has\s+|just\s+|might\s+have\s+|"
          r"may\s+have\s+)?(?:broke\w*|"
          r"break\w*|gone|went|gush\w*|leak\w*|trickl\w*|pour\w*|burst)|\b(?:is\s+this|are\s+these|could\s+this\s+be)\s+"
          r"my\s+waters\b|\b(?:rupture\w*|ruptured)\s+(?:of\s+)?(?:the\s+)?membranes|\b(?:pprom|srom|prom)\b",
          needs=r"\b(?<![\d][-–])(?:[5-9]|[12]\d|3[0-6])\s*(?:\+[0-6]\s*)?(?:weeks?|wks?)\b(?!\s+(?:old|ago|post))|"
          r"\b(?:[12]\d|3[0-6])\+[0-6]\b"),
    # diabetic emergency: low sugar, or a diabetic, with confusion/drowsiness/seizure/unresponsiveness; DKA signs.
    _flag("diabetic", ALERT, needs=rf"{LOW_SUGAR}|\bdiabet\w*|\binsulin\b|\bt1d\b"),
    _flag("diabetic", r"\b(?:dka|ketoacidosis|hhs)\b", named=True),
    _flag("diabetic", r"\bfruity breath|\bketones?\s+(?:are\s+|is\s+)?(?:very\s+)?high"),
    # head injury: a blow to the head with vomiting, confusion, drowsiness, loss of consciousness or anticoagulants.
    _flag("head_injury", HEAD_HIT, needs=HEAD_RED),
    # sepsis/meningitis: a rash that does not fade under a glass; named sepsis/meningitis; fever with stiff neck,
    # light sensitivity, confusion, drowsiness, fast breathing, low blood pressure or feeling like dying.
    _flag("sepsis", rf"\bnon-?blanch\w*|\bpetechia\w*|\bpurpur\w*|\b(?:rash|spots|blotches|marks)\s+{W}{{0,2}}?"
          rf"(?:that\s+)?{NOT}\s+(?:fade|disappear|go away|blanch)\w*|\b(?:fail\w*|positive)\s+(?:the\s+)?glass test|"
          rf"\bglass test\s+{W}{{0,3}}?(?:positive|failed|still\s+(?:see|visible|there))"),
    _flag("sepsis", r"\b(?:suspected\s+)?(?:sepsis|septic shock|meningitis|meningococcal)\b(?!\s+(?:vaccin\w*|jabs?|"
          r"shots?|b\b|immuni[sz]\w*|booster))", named=True),
    _flag("sepsis", rf"\bstiff neck|\bneck (?:is )?stiff\w*|\bphotophob\w*|\blight hurts|\bconfus\w*|\b{DROWSY}|"
          r"\bfloppy|\bbreathing (?:really |very )?fast|\brapid breathing|\bmottled|\bfeel(?:s|ing)? like (?:i'?m|i am|"
          r"he'?s|she'?s) (?:going to |gonna )?di(?:e|ing)|\bbp\s*(?:of\s*)?[4-8]\d\s*/|\bhypotens\w*",
          needs=rf"\b{FEVER}"),
    # a fever in a baby under 3 months (NICE: red at 38 C or above), the age said anywhere in the conversation (an
    # age range, "infants 8-21 days old", is a class of patients, not a baby)
    _flag("sepsis", rf"\b{FEVER}|\b(?:feels?|felt|feeling|is|was|seems?)\s+(?:really\s+|very\s+|so\s+)?hot\b|"
          r"\bhot to (?:the )?touch|\b(?:3[89]|4[01])(?:\.\d)?\s*(?:°\s*c?|degrees|c\b)|\b(?:3[89]|4[01])\.\d\b|"
          r"\b(?:100\.[4-9]|10[1-6](?:\.\d)?)\s*(?:°\s*f?|degrees|f\b)",
          needs=r"\b(?<![\d][-–])(?:newborn|new-born|neonates?|(?:[1-9]|[1-8]\d|one|two|three|four|five|six|seven|eight|nine|ten)"
          r"[- ]?(?:days?|d)[- ]old|(?:[1-9]|1[0-2]|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
          r"[- ]?(?:weeks?|wks?)[- ]old|(?:[12]|one|two|a)[- ]?months?[- ]old|born\s+(?:\w+\s+){0,2}?(?:days?|"
          r"weeks?|a week|a month) ago)\b"),
    # unconsciousness/seizure: unresponsive, can't wake, collapsed; a seizure over 5 minutes, not stopping,
    # happening now, or a first seizure.
    _flag("unconscious", UNRESPONSIVE + rf"|\b{SEIZURE}\s+{W}{{0,4}}?(?:for|over|more than|>|longer than)\s*"
          rf"(?:[5-9]|\d\d|five|six|seven|eight|nine|ten|fifteen|twenty)\s*(?:\+\s*)?min|\b{SEIZURE}\s+{W}{{0,3}}?"
          rf"{NOT}\s+stop\w*|\b(?:having|'s having|is having|started having)\s+(?:a\s+)?"
          rf"(?:seizure|fit|convulsion)|\b(?:is|'s|are|started|keeps)\s+{W}?(?:fitting|seizing|convulsing)|"
          r"\bfirst (?:ever )?seizure"),
    _flag("unconscious", r"\bstatus epilepticus", named=True),
    # breathing: can't breathe, gasping, blue lips, choking, not breathing, SpO2 under 92%, can't finish sentences,
    # severe asthma; "can't catch my breath" unless mild or explained ("after running").
    _flag("breathing", CANT_BREATHE + r"|\b(?:blue|bluish|blueish|grey|gray|purple)\s+lips|\blips\s+(?:are\s+|look\s+|"
          r"looks\s+|turning\s+|going\s+|turned\s+|went\s+)*(?:blue\w*|grey|gray|purple)|\b(?:turning|went|gone|going)"
          rf"\s+blue|\bchok(?:ing|ed)\b|\b(?:stopped|{NOT})\s+breathing|\b(?:spo2|sats?|o2 sats?|oxygen(?: saturation|"
          r" level)?)\s*(?:of|is|at|:|=|was)?\s*(?:[4-8]\d|9[01])\b(?!\s*(?:-|to)\s*\d)|\binhaler\s+(?:is\s*n'?t|isnt|"
          r"is not|not|does\s*n'?t|doesnt|won'?t|did\s*n'?t)\s+(?:help|work)\w*"),
    _flag("breathing", r"\b(?:severe|acute severe|life-threatening)\s+asthma", named=True),
    _flag("breathing", rf"\b{CANT}\s+catch\s+{WHO}\s+{BREATHE}", benign=MUSCULAR),
    # bleeding: won't stop, spurting/pouring, vomiting blood, black stools, coughing up blood in quantity; heavy
    # bleeding unless menstrual.
    _flag("bleeding", rf"\b(?:bleed\w*|blood)\s+{W}{{0,3}}?{NOT}\s+(?:stop\w*|slow\w*)|\b{CANT}\s+stop\s+(?:the\s+)?"
          rf"(?:bleed\w*|blood)|\b{NOT}\s+stop\w*\s+bleed\w*|\bblood\s+(?:is\s+)?(?:spurting|pumping|pouring|gushing|"
          r"squirting)|\b(?:spurting|pouring|gushing|pumping)\s+(?:out\s+)?blood|\b(?:vomit\w*|throw\w*\s+up|threw\s+"
          r"up|puk\w*)\s+(?:up\s+)?blood|\b(?:haematemes|hematemes|melaena|melena)\w*|\bblack,?\s+tarry|\btarry\s+"
          r"(?:poo|stool|motion)\w*|"
          r"\b(?:cough\w*|spit\w*)\s+(?:up\s+)?(?:lots of|a lot of|loads of|large amounts of|mouthfuls of|cups? of)\s+"
          r"blood|\bcough\w*\s+(?:up\s+)?(?:[\w'-]+\s+){0,2}?blood\b[^.?!]{0,60}?\b(?:cups?|mouthfuls?|lots|a lot|"
          r"loads|tablespoons?|spoonfuls?|not (?:a )?little|clots?|handfuls?|a glass|pints?)\b|\b(?:cups?|mouthfuls?|"
          r"tablespoons?|spoonfuls?|handfuls?|glass)\s+of\s+blood\b[^.?!]{0,40}?\bcough\w*"),
    # vomit like coffee grounds or bright red, however told ("brought up something that looked like used coffee")
    _flag("bleeding", r"\b(?:vomit\w*|throw\w*\s+up|threw\s+up|thrown\s+up|brought\s+up|bringing\s+up|been\s+sick|"
          r"sick\s+(?:up|was)|puk\w*)\s+(?:[\w'-]+\s+){0,8}?(?:coffee[- ]grounds?|(?:like|looked like|looks like|"
          r"resembl\w*)\s+(?:used\s+|old\s+|wet\s+)?coffee|bright\s+red|dark\s+red\s+(?:clots|blood))|"
          r"\bcoffee[- ]ground\w*\s+(?:vomit\w*|emesis|sick|material)"),
    # black stools (not tarry) that iron or bismuth explain are not melaena
    _flag("bleeding", r"\bblack\s+(?:poo|poop|stool|motion)\w*",
          cause=r"\b(?:iron|ferrous|ferric|bismuth|pepto|liquorice|licorice|blueberr\w*|activated charcoal)\b"),
    _flag("bleeding", r"\b(?:heavy|heavily|severe|profuse\w*|uncontroll\w*|massive|major|large)\s+(?:[\w'-]+\s+)?"
          r"(?:bleed\w*|haemorrhage|hemorrhage|blood loss)|\bbleed\w*\s+(?:heavily|profusely|everywhere)",
          benign=MENSTRUAL, named=True),
    # severe abdominal pain: strong words ("severe", "excruciating", "worst"), or a rigid belly.
    _flag("abdominal", rf"\b{STRONG}\s+{W}{{0,5}}?{BELLY}|\b{BELLY}\s+(?:pain|ache|cramps?)\s+(?:is\s+)?{STRONG}|"
          rf"\b{BELLY}\s+(?:is\s+)?(?:rigid|hard as a board|board-?like)|\brigid\s+(?:{BELLY}|abdo)|\bperitonism|"
          r"\bguarding", benign=MENSTRUAL),
    # sudden tearing pain through to the back (aortic dissection); sudden severe testicular pain (torsion).
    _flag("cardiac", rf"\b(?:tearing|ripping)\s+{W}{{0,2}}?(?:pain|feeling|sensation)\b.{{0,60}}\b(?:chest|back|"
                     rf"shoulder "
          r"blades?|between)\b"),
    _flag("abdominal", rf"\b(?:{SUDDEN}|{STRONG}|really bad|very bad)\s+{W}{{0,3}}?(?:testic\w*|testes|balls?|scrotum|"
          r"scrotal)\b|\b(?:testic\w*|scrotal)\s+(?:pain|torsion)\b.{0,40}\b(?:sudden\w*|severe|vomit\w*)"),
    # major injury and environmental emergencies: near drowning, electric shock, a fall from a height, a road
    # crash, a bone through the skin, a severed part, large or deep burns, heat stroke, hypothermia.
    _flag("injury", r"\bnear[- ]?drown\w*|\bnearly drown\w*|\bdrowning\b|\b(?:pulled|dragged|fished|rescued|got)\s+"
          r"(?:\w+\s+){0,3}?(?:out of|from)\s+(?:the\s+)?(?:pool|water|lake|sea|river|bath|canal|pond)|\b(?:was|went|"
          r"been)"
          r"\s+under\s?water\b|\belectrocut\w*|\belectric(?:al)?\s+shock|\bfell\s+(?:\w+\s+){0,3}?(?:off|from|out of|"
          r"down)\s+"
          r"(?:a|the|his|her|my|our)?\s*(?:roof|ladder|balcony|scaffold\w*|window|height|tree|cliff)|"
          r"\b(?:car|motorbike|motorcycle|bike|road|traffic|motorway)\s+(?:crash|accident|collision|smash)|"
          r"(?<!nearly )(?<!almost )\bhit by an?\s+"
          r"(?:car|bus|truck|van|lorry|train|motorbike)|\bbone\s+(?:is\s+)?(?:sticking|poking|coming|showing)\s+"
          r"(?:out|through)|\b(?:open|compound)\s+fracture|\b(?:severed|chopped off|cut off)\s+(?:\w+\s+)?(?:finger|"
          r"thumb|toe|hand|foot)|\b(?:third[- ]degree|full[- ]thickness)\s+burns?|\bburns?\s+(?:\w+\s+){0,3}?(?:whole|"
          r"entire|all over|face|chest|large|big)\b|\bheat\s?stroke|\bhypotherm\w*", named=True),
)



@dataclass(frozen=True)
class RuleHit:
    """A red flag the rules found: its ``category`` and the text that triggered it, as written
    ("Substernal CHEST PAIN + diaphoresis": the finding, then its companion when the rule needs one)."""

    category: str
    matched: str


def red_flags(text: str, context: Sequence[str] = ()) -> list[RuleHit]:
    """Every category whose rules fire on ``text``, one hit each (its first rule that fires), in ``RED_FLAGS``
    (priority) order. ``context``: the conversation's earlier user messages, oldest first; the last two may supply
    a rule's ``needs`` companion, never its finding. Odd input (empty, control characters, other scripts) finds
    nothing and never raises."""
    if not isinstance(text, str):
        raise TypeError(f"red_flags expects the message as str, got {type(text).__name__}")
    scan = Scan.of(text)
    if not scan.text.strip():
        return []
    earlier = Scan.of("\n".join(context[-2:])) if context else None
    hits: dict[str, RuleHit] = {}
    for flag in RED_FLAGS:
        if flag.category in hits:
            continue
        hit = scan.find(flag.pattern, flag.category, flag.benign, flag.named, flag.cause)
        if hit is None:
            continue
        matched = scan.raw[hit.start():hit.end()].strip()
        if flag.needs is not None:
            where, companion = scan, scan.find(flag.needs, flag.category, None)
            if companion is None and earlier is not None:
                where, companion = earlier, earlier.find(flag.needs, flag.category, None)
            if companion is None:
                continue
            matched = f"{matched} + {where.raw[companion.start():companion.end()].strip()}"
        hits[flag.category] = RuleHit(flag.category, matched)
    return list(hits.values())
