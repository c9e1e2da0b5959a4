"""The cues that clear a red-flag finding (NegEx-style, per clause), and the bounded scan they run over.

A finding (a span a rule matched) does not count when one of these cues applies to it:

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
* preparation, anywhere in the message: "in case it ever happens", "want to know before we start weaning",
  unless it also says something is happening now ("right now", "help me", "ambulance"); and first aid asked
  about in general, in a question ("how do I do back blows on a baby who is choking?"). Neither clears suicide;
* a named condition as a property or service ("the suicidality warning", "a sepsis screening tool") or as
  something lived through ("is that normal after sepsis?", "recovering from a stroke");
* resolution, anywhere in the message: "gone now", "went away", "feel fine now", "pain-free", unless an ongoing
  cue ("still", "again", "right now", "getting worse") is present, and never for the ``PERSISTENT`` categories
  (symptoms of a stroke that went away may be a TIA; harm from a poison can come hours later);
* for rules with a ``cause`` pattern: that cause named anywhere in the finding's sentence ("started ferrous
  fumarate and now has black stools");
* for rules with a ``benign`` pattern: a mild qualifier ("a bit", "slight", "mild") just before it, or a benign
  cause in its clause ("from a cold", "after the gym", "heartburn", a period).

Idioms ("killing me", "dying to know", "gave me a heart attack", "choking on this paperwork") are blanked before
matching. Bounds: only the first ``HEAD_CHARS`` and last ``TAIL_CHARS`` characters are scanned, cues are looked for
within ``CONTEXT_CHARS`` of a finding, and at most ``MAX_FINDINGS`` matches per rule are checked, so the work is
linear in the length and bounded. Empty text, control characters and lone surrogates never raise.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

HEAD_CHARS = 4000  # scanned from the start of the message
TAIL_CHARS = 1000  # and from its end, when the message is longer than HEAD_CHARS + TAIL_CHARS
CONTEXT_CHARS = 200  # cues are looked for at most this far before/after a finding (NegEx windows are shorter)
MAX_FINDINGS = 20  # matches of one rule checked for cues per message: keeps the cue checks linear in the length


_NEG = re.compile(r"\b(?:not (?:like|that) (?:i|i'm|im|i'd|he|he's|she|she's|they|they're)|"
                  r"not|never|without|denies|denied|deny|denying|negative for|free of|absence of|nor|neither|"
                  r"no\b(?!\s*[,.!?;:])|none|ruled out)\b|n't\b|\b(?:dont|doesnt|isnt|wasnt|didnt|hasnt|havent|"
                  r"arent)\b")
_LIST_NEG = re.compile(r"(?:\bno|denies|denied|deny|denying|without|negative for|free of|absence of)$")
_PSEUDO_NEG = re.compile(r"\b(?:not sure|no idea|not only|not just|no doubt|no longer|no one|nobody|no matter|"
                         r"not (?:feeling )?(?:well|good|great|ok|okay|right|normal|myself)|dont know|not certain|"
                         r"(?:do|does|did)\s*n'?t know|(?:is|does|has|did|wo|ca)n'?t (?:help|stop|work)\w*|"
                         r"not (?:help|stop|work)\w*|can'?t tell|no better)\b")
_NEG_END = re.compile(r"[.;:!?\n]|\b(?:but|however|although|though|yet|except|apart from|aside from|now|still|"
                      r"because|since|which|who|whereas|while|present\w*|c/o|complain\w*|i|i'm|im|i've|he|he's|"
                      r"she|she's|they|they're|we|it's)\b")
_HISTORY_BEFORE = re.compile(r"\b(?:history of|hx of|h/o|pmh|past medical history|prior|previous(?:ly)?|used to|"
                             r"residual|baseline|long-?standing|documented|back in my|in my (?:teens|twenties|"
                             r"thirties|forties|fifties|youth)|last (?:week|month|year|summer|winter|spring|autumn)|"
                             r"(?:\d+|a|one|a few|few|several|many|two|three|four|five|six|ten)\s+(?:weeks?|months?|"
                             r"years?|decades?)\s+ago)\b")
_HISTORY_AFTER = re.compile(r"\b(?:(?:\d+|a|one|a few|few|several|many|two|three|four|five|six|ten)\s+)?(?:weeks?|"
                            r"wks?|months?|years?|yrs?|decades?)\s+(?:ago|back)\b|\blast (?:week|month|year|summer|"
                            r"winter|spring|autumn|fall)\b|\b(?:in|back in)\s+(?:19|20)\d\d\b|\bas an? (?:child|kid|"
                            r"teen\w*|baby|toddler)\b|\bwhen (?:i|he|she|they|we) (?:was|were) (?:\d+|diagnosed|a |"
                            r"little|young|"
                            r"at school|in school|at uni|at college|pregnant with)|\bin the (?:(?:19|20)?\d0'?s|"
                            r"sixties|seventies|"
                            r"eighties|nineties)\b")
_CHRONIC = re.compile(r"\bfor\s+(?:the\s+)?(?:last|past)?\s*(?:\d+|a few|few|a couple of|couple of|several|many|two|"
                      r"three|some)?\s*"
                      r"(?:weeks|months|years)\b|\bfor (?:a )?(?:weeks|months|years)\b|\bon and off\b|\boff and on\b|"
                      r"\bsometimes\b|\boccasionally\b|\boften\b|\bevery (?:day|night|morning|afternoon|evening|time|"
                      r"week|month)\b|\b(?:a|per) (?:night|day|week)\b|\bnightly\b|\bsame pattern\b|\bas usual\b|"
                      r"\blike always\b|\balways (?:been|had|done)\b|\bstable angina\b|\bchronic\b|\bwhenever\b|"
                      r"\bwhen (?:i|he|she|we|they) (?:eat|eats|drink|drinks|have|has|take|takes|touch|touches)\b")
_HYPOTHETICAL = re.compile(r"\bif\s+(?:someone|somebody|anyone|a person|a child|a kid|a baby|you|your|u|one|people|"
                           r"they)\b|\b(?:someone|somebody|people|a person|anyone)\s+(?:who|that|with)\b|\bin case\b|"
                           r"\bwhat happens (?:if|when)\b|\bwhen (?:someone|somebody|you|a person)\b|"
                           r"\b(?:i'?ve|i have|i) (?:heard|read)\b|\b(?:leaflet|label|package insert|patient "
                           r"information|warnings?|black box|side effects? list)\s+(?:\w+\s+){0,2}?(?:mentions?|says|"
                           r"lists?|warns?|talks about|includes?)\b|\b(?:warnings?|black[- ]box|label\w*|alerts?)\s+"
                           r"(?:about|of|for|on|regarding|re)\b|\b(?:documentary|film|movie|book|novel|article|"
                           r"show|series|podcast|lecture|course|training|essay|story|news|episode)\s+(?:about|on)\b")
_QUESTION_START = re.compile(r"^\W*(?:what|what's|whats|how|which|why|when|where|who|is|are|can|could|does|do|"
                             r"should|would|will|any|define|explain|tell me|info|information)(?![\w'])")
_TOPIC = re.compile(r"\b(?:signs? of|symptoms? of|warning signs?|causes?|mean|means|difference|prevent\w*|risks? of|"
                    r"recogni[sz]e|treat\w*|manag\w*|diagnos\w*|protocol|guidelines?|differential|used for|"
                    r"definition|statistics|rates? of|increase|approach to|workup|work-up|pathophysiology|"
                    r"evidence|risk|is it true|myths?|empirical|first[- ]line|signs|how to support|guidance|"
                    r"how (?:do|can|should) (?:i|we) (?:help|support))\b")
#: what a question about managing a named condition asks ("how often do you repeat adrenaline in refractory
#: anaphylaxis?"): clears a condition's name, not a symptom, whoever the sentence's subject
_MANAGEMENT = re.compile(r"\b(?:how often|at what (?:point|\w+ level|level|temperature|dose)|do you add|when to add|"
                         r"when (?:should|do|would) (?:we|you|i)|should we|do (?:you|we) (?:use|"
                         r"give|start|continue|stop|hold|withhold|omit|restart|repeat|treat|manage|add|titrate|switch|"
                         r"keep|check|need)|(?:first|second|third)[- ]line|formula|how long before|planning|"
                         r"repeat(?:ing)? (?:[\w-]+ ){0,3}?(?:after|every|in) \d+ ?min\w*|"
                         r"best (?:[\w-]+ ){0,3}for|"
                         r"(?:best|right|safest|good) way to (?:ask|talk|speak|raise|approach|bring (?:it )?up|screen|"
                         r"assess)|ask(?:ing)? (?:a|the|my|our) (?:patients?|clients?|service users?|person|teen\w*|"
                         r"students?|pupils?) (?:\w+ )?about|criteria|algorithm|prophylaxis|reversal|bundle|rewarming|"
                         r"refresher|journal club|trials?|rcts?|guidance|guidelines?|dosing|dose of|doses? for|"
                         r"how long "
                         r"(?:should|do) (?:we|you)|observ\w*|follow-?up|pathways?|tryptase|"
                         r"differentiate|distinguish|features of|prognosis|quoted|incidence|post-\w+ syndrome|"
                         r"vaccin\w*|grown out|teaching|revision|registrar|fy[12]|trainee|students?|nursery staff|"
                         r"first aid|course|what do (?:most|you)|empirical|signs of|watch (?:out )?for|look out for|"
                         r"screening|identifying|sensitivity|compare[sd]?|components|sepsis six|what (?:is|are)|"
                         r"how (?:would|do|will|can|could) (?:i|you|we|one) (?:know|tell|spot)|how (?:do|can|should|"
                         r"would) (?:i|we) (?:talk|speak|bring (?:it )?up|raise|approach))\b")
#: any practice verb after "do you/we" ("do you escalate", "how do you adjust"); not for suicide
_PRACTICE = re.compile(r"\bdo (?:you|we) (?!(?:think|reckon|believe|know|see|mean|feel|suppose|guess|hear|understand|"
                       r"agree|want|have|care|mind|like|love|help|talk|listen)\b)[a-z]+")
#: the writer saying they are in that state ("I'm suicidal", "I've been having suicidal thoughts"), right before
#: the finding: then no management phrase in the sentence clears suicide
_SELF_STATE = re.compile(r"\b(?:i'?m|im|i am|i feel|i'?m feeling|feeling|i'?ve been|ive been|i have been|been|i get|"
                         r"i have|i'?ve got|having|i keep having|my)\s+(?:so |really |very |quite |a bit |kind of |"
                         r"kinda |pretty |extremely |seriously |actively |passively |a lot of |lots of |some )?$")
#: a named condition said to be happening to someone now ("my son is having anaphylaxis", "she's in anaphylactic
#: shock", "I think this is sepsis"), right before it: then no management phrase in the sentence clears it
_NOW_STATE = re.compile(r"(?:\b(?:is|'s|am|'m|are|'re|was)\s+(?:\w+\s+)?(?:having|in|going into|gone into|showing)|"
                        r"\b(?:having|has|have|got|getting|developing|developed|showing)|\b(?:think|thinks|worried|"
                        r"scared|afraid|sure)\s+(?:that\s+)?(?:it'?s|this is|that'?s|he'?s|she'?s|he has|she has|"
                        r"i have|i'?m|we'?re|they'?re|he is|she is|it is)(?:\s+(?:having|in|got))?|\b(?:might|may|"
                        r"could|must)\s+(?:be|have)|\blooks? like)\s+(?:an?\s+|full\s+|a\s+full\s+|severe\s+|"
                        r"another\s+)?$")
#: a named condition as a property or a service ("the suicidality warning", "sepsis screening tool"), right after it
_PROPERTY_AFTER = re.compile(r"^\s*(?:warnings?|black[- ]box|label\w*|alerts?|screen\w*|scores?|tools?|bundles?|"
                             r"protocols?|pathways?|awareness|training|statistics|rates?)\b")
#: life after a named condition ("is that normal after sepsis?", "recovering from a stroke"), right before it
_AFTERMATH_BEFORE = re.compile(r"\b(?:(?:normal|common|usual|expected|ok|okay|typical)\s+"
                               r"(?:to\s+(?:\w+\s+){1,2})?(?:after|following|post)|recover\w* from|"
                               r"recovery (?:from|after)|survived|survivors? of|"
                               r"since (?:my|his|her|their|the)|after-?effects? of|aftermath of|long[- ]term effects? "
                               r"of|life after)\s+(?:a |an |the |my |his |her |their )?$")
#: how to give first aid to someone in general, in a question ("how do I do back blows on a baby who is choking?")
_GENERIC_PERSON = re.compile(r"\b(?:on|to|for)\s+(?:a|an|someone|somebody)\s+(?:(?:baby|infant|child|kid|toddler|"
                             r"person|adult|casualty|victim)\s+)?(?:who|that)\b")
#: getting ready for something that has not happened ("want to know before we start weaning", "just in case"),
#: unless the message says it is happening now
_PREPARING = re.compile(r"\b(?:just )?in case (?:it|this|that|something|anything)\s+(?:ever\s+)?(?:happens|occurs)\b|"
                        r"\b(?:know|learn)\w*\s+(?:\w+\s+){0,6}?(?:just )?in case\b|\bbe prepared\b|"
                        r"\bfor (?:future )?reference\b|"
                        r"\b(?:want(?:ed)?|need|like|trying) to (?:know|learn|be ready)\s+(?:\w+\s+){0,3}?"
                        r"(?:before|ahead|in advance|for when|for if)\b|"
                        r"\bbefore (?:we|i|they|he|she) (?:start|begin|go|travel|leave|fly)\b|"
                        r"\bif (?:it|this|that) ever happens\b|\bfor when (?:he|she|they|we|the baby)\b")
_HAPPENING = re.compile(r"\b(?:right now|now|at the moment|currently|help me|someone help|hurry|quick\w*|"
                        r"ambulance|911|999|112|000|asap|urgent\w*)\b")
#: looking back on a fear that passed ("I honestly thought I was having a heart attack!"), in the finding's clause
_RETROSPECT = re.compile(r"\b(?:i|we) (?:honestly |really |genuinely |actually |seriously )?thought (?:i|he|she|we|"
                         r"they|it) (?:was|were|had|'d|might)\b|\bpanick?ed thinking\b")
#: a sentence framed as teaching or study is about the topic, whoever its subject ("DKA teaching: why do we ...")
_TEACHING = re.compile(r"\b(?:teaching|revision|exam|quiz|osce|viva|tutorial|lecture|essay|assignment|homework|cpd)\b"
                       r"\s*(?:question|session|point|case|prep)?\s*[:-]|\bfor (?:my|an|the|a) (?:exam|essay|"
                       r"assignment|revision|lecture|presentation|teaching session|osce)\b|\bteaching session\b")
_SUBJECT = re.compile(r"\b(?:i|i'm|im|i've|ive|i'd|my|we|we're|our|he|he's|hes|she|she's|shes|his|him|her|"
                      r"they're|pt|patient)\b|\b\d+\s?(?:yo|y/o|yr|[mf])\b")
_RESOLVED = re.compile(r"\b(?:gone now|went away|resolved|settled|passed(?! out| away)|pain-? ?free|back to normal|"
                       r"then was fine|fine now|cough(?:ed)? (?:it|them|the \w+) (?:up|out)|spat (?:it|them) out|"
                       r"(?<!waters )(?<!water )(?:has|have|had|it'?s|its|is) (?:all )?gone(?: away| now)?"
                       r"(?=\s*(?:[,.;!?]|$|and\b|but\b))|(?:am|i'm|im|feel|feels|felt|feeling|was|is)\s+(?:fine|ok|"
                       r"okay|better|normal)\s+(?:now|since|after|afterwards))\b")
_ONGOING = re.compile(r"\b(?:still|again|right now|came back|coming back|keeps?|getting worse|worse now|won'?t stop)\b")
_MILD = re.compile(r"\b(?:a bit|a little|a bit of|slight\w*|mild\w*|minor|little|small)\s+(?:of\s+)?(?:[\w'-]+\s+)?$")
_IDIOMS = re.compile(r"\bkill(?:ing)? me\b|\bdying (?:to|for|of laughter|laughing)\b|\bdied laughing\b|"
                     r"\b(?:die|dying) (?:for|of|from) (?:a |an |some )?(?:cup|coffee|tea|pizza|beer|drink|chocolate|"
                     r"laughter|laughing|embarrassment|shame|boredom|curiosity)\b|\b(?:gave|give|giving|nearly gave) "
                     r"(?:me|him|her) a heart attack\b|\bchok(?:ing|ed) on (?:all )?(?:this|that|the|my|these) "
                     r"(?:paperwork|work|workload|emails?|tears|words|emotions?|debt)\b|"
                     r"\bchoked (?:in|at|during) (?:the|that|our|this|my|his|her|their) (?:final|game|match|end|"
                     r"interview|exam|race|tie-?break)\b|"
                     # choking as losing nerve, told as a habit: plural occasions ("keeps choking in matches")
                     r"\bchok(?:es|ing|ed)?\s+(?!on\b)(?:[\w'-]+\s+){0,6}?(?:matches|games|finals|tournaments|"
                     r"competitions|exams|interviews|penalties|big moments|under pressure|in the clutch)\b|"
                     r"\b(?:market|economy|stocks?|shares|laptop|computer|phone|car|engine|plants?|houseplants?|"
                     r"wifi|server|code|app|printer|website|bank account|wallet|garden|lawn|tree|tomatoes|roses|"
                     r"orchid|succulent|fish tank|battery|startup|company|business|firm|shop|project|budget|"
                     r"finances|career|campaign|season|league|industry|sector|housing market)\s+"
                     r"(?:(?:is|are|'s|looks like it'?s|was|were|seems?|has|just|keeps|kept|basically|literally|"
                     r"practically|totally|completely|pretty much|kind of|sort of|nearly|almost)\s+)*"
                     r"(?:(?:having|about to have|going to have)\s+(?:a\s+)?(?:heart attack|seizure|stroke|meltdown|"
                     r"breakdown)|(?:slowly |literally )?(?:choking|dying|suffocating|drowning|bleeding|collapsing)|"
                     r"(?:(?:went|goes|going|gone) into|in) (?:full |total |complete )?"
                     r"(?:cardiac arrest|anaphylactic shock|shock|a coma))\b|"
                     r"\bdrowning in (?!(?:the|a|an|water|his|her|my|their|our|deep|it)\b)\w+|"
                     r"\b(?:nearly|almost) had (?:a )?(?:heart attack|cardiac arrest|coronary|stroke|seizure)\b|"
                     # a device that "died" and "won't wake up"
                     r"\b(?:laptop|computer|pc|phone|tablet|ipad|iphone|macbook|kindle|console|tv|screen|monitor|"
                     r"printer|router|device|car|engine)\s+(?:[\w'-]+\s+){0,6}?(?:won'?t|will not|doesn'?t|does not|"
                     r"isn'?t|is not|not)\s+(?:wake|waking|respond\w*|turn(?:ing)? on|come on|boot\w*)(?: up)?\b|"
                     # laughter or boredom right after it: "I literally can't breathe lol", "basically unconscious 😴"
                     r"\b(?:literally\s+)?(?:can'?t|cannot|could ?n'?t)\s+breathe\s*(?:lol|lmao|rofl|haha\w*|😂|🤣)|"
                     r"\b(?:basically|practically|virtually|nearly|almost)\s+(?:unconscious|comatose|in a coma|dead)\s*"
                     r"(?:😴|💤|zzz+|lol|lmao|haha\w*)|\b(?:so boring|bored|boredom)\b[^.?!]{0,40}?\b(?:basically|"
                     r"practically|virtually|nearly|almost)\s+(?:unconscious|comatose|in a coma|dead)\b|"
                     r"\b(?:feel\w*|felt)\s+like\s+(?:i'?ve|i have|i'?d|i had|he'?s|she'?s|they'?ve|i)?\s*"
                     r"(?:been\s+|got\s+)?"
                     r"(?:hit|run over|flattened|knocked down|mown down) by an?\s+(?:bus|truck|train|lorry|steamroller|"
                     r"tank|tractor)\b|\blike an? (?:bus|truck|train|lorry) (?:hit|ran over) me\b|"
                     r"\b(?:basically|practically|virtually|pretty much)\s+(?:unconscious|comatose|dead|in a coma)\s+"
                     r"(?:on|in)\s+(?:the\s+|my\s+)?(?:sofa|couch|bed|settee)\s+(?:for|all)\b|"
                     r"\b(?:so|too|really|very)\s+(?:spicy|peppery)\b[^.?!]{0,40}?(?:couldn'?t|could not|can'?t|cant|"
                     r"couldnt)\s+breathe\b|"
                     r"\b(?:overdos(?:ed|ing)|od'?d|od'?ing) on (?:chocolate|"
                     r"sweets|sugar|candy|coffee|caffeine|cake|netflix|tv|sun|love|pizza|christmas \w+|junk food)\b|"
                     r"\b(?:brain|head|laptop|computer|phone)\s+(?:just\s+)?(?:had|having|has)\s+a\s+stroke\b|"
                     r"\b(?:laugh\w*|cr(?:y|ied|ying)) so (?:hard|much)\s+(?:\w+\s+){0,4}?(?:couldn'?t|could not|"
                     r"can'?t|cant|"
                     r"couldnt) breathe\b|\bcollapsed (?:onto|on|into) (?:the |my |his |her |their )?(?:sofa|couch|"
                     r"bed|chair|armchair)\b|\b(?:cakes?|sponge|souffl\w*|bread|loaf|meringues?|pastry|pie|"
                     r"pudding|tents?|roof|ceiling|buildings?|bridge|walls?|shelf|shelves|tower|scaffolding|deal|"
                     r"talks|market|economy|business|company|plans?|sandcastle|defence|defense|midfield|attack|"
                     r"back (?:four|line)|lineup|line-up|squad|team|form|confidence|morale|prices?|currency|"
                     r"negotiations|government|coalition|strategy|league|season)\s+(?:has\s+|had\s+|just\s+|"
                     r"completely\s+|totally\s+)*collapsed\b|"
                     r"\b(?:like|as if|as though)\s+(?:he|she|i|they|you)(?:'s|'m|'re| is| am| are| was| were)?\s+"
                     r"(?:unconscious|dead|dying|having a (?:stroke|seizure|heart attack))\b|"
                     r"\b(?:choked|choking|couldn'?t breathe|can'?t breathe|could not breathe|cried|"
                     r"crying)\s+(?:\w+\s+)"
                     r"{0,4}?laugh\w*")
_CLAUSE_END = re.compile(r"[,;:.!?\n]|\b(?:but|now|and now)\b")
_SENTENCE_END = re.compile(r"[!?;\n]+|(?<!\d)\.+|\.+(?!\d)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                              "\u2013": "-", "\u2014": "-"})
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff\ud800-\udfff]")

# Red flags that stay urgent when the writer says they have passed (TIA, delayed poisoning, head injury, crisis).
PERSISTENT = frozenset({"stroke", "suicide", "overdose", "head_injury"})


def bounded(message: str) -> str:
    """``message`` as the scans and the classifier read it: at most ``HEAD_CHARS`` from its start and
    ``TAIL_CHARS`` from its end, control characters, zero-width characters and lone surrogates made spaces."""
    if len(message) > HEAD_CHARS + TAIL_CHARS:
        message = message[:HEAD_CHARS] + "\n" + message[-TAIL_CHARS:]
    return _CONTROL.sub(" ", message)


@dataclass(frozen=True)
class Scan:
    """The scanned text: ``raw`` (the input ``bounded``) and ``text`` (its lower-cased twin of the same
    length, so offsets in ``text`` slice ``raw``), with the sentence starts and the message-level resolution cue."""

    raw: str
    text: str
    sentence_starts: tuple[int, ...]
    resolved: bool
    preparing: bool = False
    _general: dict[tuple[int, bool], bool] = field(default_factory=dict)  # (sentence, strict) -> informational

    @classmethod
    def of(cls, message: str) -> Scan:
        raw = bounded(message)
        text = raw.lower()
        if len(text) != len(raw):  # a few characters lower-case to two ('İ'): keep the offsets aligned
            text = "".join(c.lower() if len(c.lower()) == 1 else c for c in raw)
        text = text.translate(_APOSTROPHES)
        text = _IDIOMS.sub(lambda m: " " * len(m.group()), text)
        starts = (0, *(m.end() for m in _SENTENCE_END.finditer(text)))
        resolved = bool(_RESOLVED.search(text)) and not _ONGOING.search(text)
        preparing = bool(_PREPARING.search(text)) and not _HAPPENING.search(text)
        return cls(raw, text, starts, resolved, preparing)

    def find(self, pattern: re.Pattern[str], category: str, benign: re.Pattern[str] | None,
             named: bool = False, cause: re.Pattern[str] | None = None) -> re.Match[str] | None:
        """The first match of ``pattern`` that no cue clears (at most ``MAX_FINDINGS`` matches are checked)."""
        for n, match in enumerate(pattern.finditer(self.text)):
            if n == MAX_FINDINGS:
                break
            if not self.cleared(match.start(), match.end(), category, benign, named, cause):
                return match
        return None

    def cleared(self, start: int, end: int, category: str, benign: re.Pattern[str] | None = None,
                named: bool = False, cause: re.Pattern[str] | None = None) -> bool:
        """Whether a cue clears the finding at ``text[start:end]`` for ``category`` (the module docstring's list);
        ``named``: the finding names a condition, which a management or teaching question about it also clears."""
        i = bisect.bisect_right(self.sentence_starts, start) - 1
        s0 = self.sentence_starts[i]
        s1 = self.sentence_starts[i + 1] if i + 1 < len(self.sentence_starts) else len(self.text)
        before = self.text[max(s0, start - CONTEXT_CHARS):start]
        cuts = list(_CLAUSE_END.finditer(before))
        clause_before = before[cuts[-1].end():] if cuts else before
        after = self.text[end:min(s1, end + CONTEXT_CHARS)]
        cut = _CLAUSE_END.search(after)
        clause_after = after[:cut.start()] if cut else after
        if negated(before, _NEG, pseudo=_PSEUDO_NEG) or negated(before, _HISTORY_BEFORE, limit=6):
            return True
        if _HISTORY_AFTER.search(clause_after) or _HYPOTHETICAL.search(before) or _RETROSPECT.search(clause_before):
            return True
        if category != "suicide" and _CHRONIC.search(clause_before + " " + clause_after):
            return True
        if self._informational(i, s0, s1, strict=category == "suicide"):
            return True
        sentence = self.text[s0:min(s1, s0 + CONTEXT_CHARS * 5)]
        managing = _MANAGEMENT.search(sentence) or category != "suicide" and _PRACTICE.search(sentence)
        happening = _NOW_STATE.search(clause_before) or category == "suicide" and _SELF_STATE.search(clause_before)
        if named and not happening and (
                managing or _PROPERTY_AFTER.match(after) or _AFTERMATH_BEFORE.search(before)):
            return True
        if category != "suicide" and (self.preparing or _GENERIC_PERSON.search(clause_before) and
                                      _QUESTION_START.match(self.text[s0:start])):
            return True
        if self.resolved and category not in PERSISTENT:
            return True
        if cause is not None and cause.search(self.text[s0:s1]):
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
            self._general[key] = bool(_TEACHING.search(sentence)) or not _SUBJECT.search(sentence) and bool(
                _TOPIC.search(sentence) or (not strict and _QUESTION_START.match(sentence)))
        return self._general[key]


def negated(before: str, cue: re.Pattern[str], limit: int = 5, pseudo: re.Pattern[str] | None = None) -> bool:
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

