"""Beliefs a user states as true: explicit, hedged, negated and presupposed, several per message.

Rule-based on purpose: the cues people use to state a belief ("I think", "I'm pretty sure", "isn't it",
"I don't think", "since X, how do I") are a small closed set, and rules give exact character spans,
run in microseconds and never hallucinate a claim. Each belief becomes a short declarative claim;
an answer to a wh-question is rewritten into a sentence with the question's subject
("What is the capital of Australia?" + "I think it's Sydney" -> "The capital of Australia is Sydney.").
Non-English text gets a language guess and no beliefs.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Iterator

from detectors.text import sentence_spans, validate_text, window
from detectors.types import Belief, BeliefReport

__all__ = ["extract_beliefs", "guess_language", "HEAD_CHARS", "TAIL_CHARS"]

# The window a long message is read through (see ``extract_beliefs``): a user's question and belief sit
# at the start or, most often, the end of a long message; 5,000 characters is about 1,000 words.
HEAD_CHARS = 2_000
TAIL_CHARS = 3_000

# --- language guess: share of each language's commonest function words among the message's words ---
_STOPWORDS = {
    "en": "the a an is are was were be i you it that this of to in and or not do does did my me what how why "
          "think sure believe have has with for on at so but just can",
    "fr": "le la les un une est sont je tu il elle que qui de des du et ou pas ne mon ma mes pour avec sur "
          "dans ce cette c'est suis",
    "es": "el la los las un una es son yo tu que de del y o no mi mis por para con en lo esta estoy pero como",
    "de": "der die das ein eine ist sind ich du er sie es und oder nicht mein meine mit für auf in zu den dem "
          "wie was bin",
    "it": "il lo la gli le un una è sono io tu che di del e o non mio mia per con su nel come sei",
    "pt": "o a os as um uma é são eu tu que de do da e ou não meu minha por para com em como está",
    "nl": "de het een is zijn ik jij je dat van en of niet mijn met voor op in te wat hoe",
}
_STOPSETS = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def guess_language(text: str) -> str:
    """ISO 639-1 guess from function words and script; 'und' when there is nothing to go on."""
    words = [w.lower() for w in _WORD.findall(text[:5000])]
    if not words:
        return "und"
    letters = "".join(words)
    latin = sum(1 for ch in letters if ch < "\u0250")
    if latin < 0.5 * len(letters):
        for lang, lo, hi in (("ru", "\u0400", "\u04ff"), ("el", "\u0370", "\u03ff"), ("ar", "\u0600", "\u06ff"),
                             ("he", "\u0590", "\u05ff"), ("zh", "\u4e00", "\u9fff"), ("ja", "\u3040", "\u30ff"),
                             ("ko", "\uac00", "\ud7af"), ("hi", "\u0900", "\u097f")):
            if sum(1 for ch in letters if lo <= ch <= hi) > 0.3 * len(letters):
                return lang
        return "und"
    scores = {lang: sum(w in stops for w in words) for lang, stops in _STOPSETS.items()}
    best = max(scores, key=scores.get)
    if scores[best] == 0:
        return "en" if all(ch.isascii() for ch in letters) else "und"
    # English wins ties: casual English shares many short words with its neighbours.
    return "en" if scores["en"] >= scores[best] * 0.8 else best


# --- cues ---
@dataclass
class _Cue:
    start: int
    end: int
    kind: str  # explicit | hedged | negated | presupposed
    negate: bool
    confidence: float
    tag: str = ""  # 'isnt-it' (content is the answer), 'told' (report of someone else's claim)


_I = r"(?:i|ive|i've|i'd|id)"
_IM = r"(?:i'?m|i am|im)"
_NEG_THINK = r"(?:don'?t|do not|dont|didn'?t|did not)"
# who a reported claim comes from, and how they state it (``_CUES``'s 'told' row)
_PERSON = (r"(?:friend|mate|pal|mom|mum|mother|dad|father|parent|teacher|doctor|gp|nurse|pharmacist|dentist|brother|"
           r"sister|boss|manager|wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?|ex|professor|lecturer|tutor|"
           r"grandma|grandmother|grandpa|grandfather|grandad|granddad|gran|granny|nan|nana|coworker|co-worker|"
           r"colleague|uncle|aunt|auntie|son|daughter|neighbour|neighbor|cousin|flatmate|roommate|housemate|kid|child|"
           r"children|family|therapist|counsellor|counselor|coach|trainer|physio|chiropractor|midwife|vicar|priest|"
           r"pastor|cousin|nephew|niece|in-law|stepdad|stepmum|stepmom|landlord|vet)s?")
_REPORT_ADV = r"(?:always|keeps?|just|once|still|even|really|also|apparently|swore|has always|had always|used to)"
_REPORT_VERB = (r"(?:told me|tells me|told us|tells us|told him|told her|told them|says|said|say|swears|swore|insists|"
                r"insisted|reckons|reckoned|thinks|believes|claims|claimed|keeps saying|keeps telling (?:me|us|him|her|"
                r"them|\w+)|hinted|warned(?: me| us)?|is convinced|was convinced|swear|insist|reckon|claim|tell me|"
                r"told|tells|keep saying|assured me|promised(?: me)?)")
_CUES: list[tuple[str, str, bool, float, str]] = [
    # negated first: "I don't think" must not be read as "I think"
    (rf"\b(?:i {_NEG_THINK} (?:really )?(?:think|believe|reckon|feel like)|i doubt|{_IM} not (?:convinced|so sure)|"
     rf"{_IM} not sure)\b(?:\s++that)?", "negated", True, 0.8, ""),
    (r"\b(?:i(?:'m| am|m) not (?:sure|certain),? but|not sure,? but|i (?:could|might|may) be (?:wrong|mistaken|"
     r"overthinking(?: it| this)?|being (?:paranoid|silly|daft|dumb|stupid)),? but|correct me if i'?m wrong,? but)\b", "hedged", False, 0.6, ""),
    (rf"\b(?:{_I} (?:really |honestly |strongly |still |always |genuinely )?(?:think|thnk|thinkk|believe|beleive|belive|"
     rf"reckon|know|remember|recall|learned|learnt|was taught|were taught|read|heard|thought|believed|was told)|"
     rf"{_IM} (?:pretty |quite |fairly |very |absolutely |completely |totally |so |100% |really )?"
     rf"(?:sure|certain|positive|convinced|confident)|pretty sure|(?<!\ba )(?<!\bthe )(?:i )?bet|everyone knows|we all know|"
     rf"obviously|clearly|of course)\b(?:\s++that)?", "explicit", False, 0.9, ""),
    # someone else's claim: "my neighbour swears X", "my brother-in-law says X", "people say X", "he says X"
    (rf"\b(?:(?:my|our|his|her|their) (?:[\w'-]+ ){{0,3}}?{_PERSON}|(?:people|everyone|everybody|someone|somebody|"
     rf"they|the internet|the news|the papers|a (?:guy|woman|man|lady|bloke|friend|mate) (?:at|from|on|in) (?:[\w'-]+ ){{0,2}}?"
     rf"(?:work|church|school|the \w+|facebook|tiktok|youtube|instagram|reddit|group|class|gym|pub|office)))"
     rf"(?:[ -]in[ -]laws?)? (?:{_REPORT_ADV} )?{_REPORT_VERB}(?:\s++that)?\b|"
     rf"\b(?:he|she) (?:{_REPORT_ADV} )?(?:says|swears|insists|reckons|claims|keeps saying|keeps telling (?:me|us)|"
     rf"joked|always said)(?:\s++that)?\b|\b(?:i (?:saw|read) (?:on|in) (?:[\w'-]+ ){{1,2}}?that)\b|"
     rf"\bi (?:keep|kept|always) (?:reading|hearing|seeing)(?: (?:online|everywhere))? that\b|"
     rf"(?<!\bi )(?<!\bwe )\bused to (?:say|tell (?:me|us))(?:\s++that)?\b", "reported", False, 0.8, "told"),
    (r"\b(?:i guess|i suppose|i suspect|i'?m guessing|im guessing|maybe|perhaps|probably|possibly|"
     r"(?<!\bi )(?:might be|could be)|i wonder if)\b(?:\s++that)?", "hedged", False, 0.6, ""),
    (r"\b(?:isn'?t it|isnt it|is it not|wasn'?t it|aren'?t they|won'?t it|doesn'?t it|isn'?t that|could it be)\b",
     "hedged", False, 0.6, "isnt-it"),
    # a reason the user gives ("I skip the coat because you lose most heat through your head"): kept only when
    # its content is a general claim, not the user's own story (``_general_reason``)
    (r"\b(?:because|'cause|cos|coz|cuz)\b(?! of\b)", "explicit", False, 0.6, "reason"),
]
# "since X, how ...": a premise keyword at the start of the text or of a sentence (after . ! ? or a line
# break, and any white space). Written as ``(?:^|(?<=[.!?\n]\s)|(?<=[.!?\n]))\s*(?:since|...)\b`` it
# rescans a run of white space from every position in it; ``_presupposition_cues`` finds the same
# matches in one pass: the keyword with the white space before it, tried only from the run's start.
_PREMISE = re.compile(r"(?<!\s)\s*+(?:since|given that|now that|considering that|seeing as)\b", re.IGNORECASE)
_PREMISE_CUE = ("presupposed", False, 0.7, "")
_CUE_RES = [(re.compile(p, re.IGNORECASE), k, n, c, t) for p, k, n, c, t in _CUES]
_SENTENCE_END = re.compile(r"[.!?;\n]")
# Every white-space run below is entered only from its first character ``(?<!\s)`` and never given back
# (``\s++``): the words after it start with a letter, so this finds the same leftmost match in one pass
# where ``\s+`` rescanned the run from each of its positions ("I think" + 8,000 spaces took 8 s).
_CLAUSE_END_SOURCE = (
    r",?(?<!\s)\s++(?:but|so|though|although|and i|and my|and that'?s|which is why|because|cuz|lol|haha)\b|"
    r",\s*+and\b|(?<!\s)\s++-++\s|,\s*+(?:right|is that (?:right|true|correct)|isn'?t it|no)\s*+(?=[?.!]|$)|"
    r",\s*+(?=(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am|are|will|would)\b)"
)
_CLAUSE_END = re.compile(_CLAUSE_END_SOURCE, re.IGNORECASE)
# the same ends anchored where a search starts inside a run of spaces (the guards above skip such runs)
_CLAUSE_END_HERE = re.compile(_CLAUSE_END_SOURCE.replace("(?<!\\s)", ""), re.IGNORECASE)


def _clause_end(text: str, pos: int, end: int) -> "re.Match[str] | None":
    """The first clause end in ``text[pos:end]``. Whitespace runs are entered only from their start (linear
    time); a search that starts inside a run also tries the run's remainder, anchored at ``pos``."""
    if 0 < pos < end and text[pos].isspace() and text[pos - 1].isspace():
        here = _CLAUSE_END_HERE.match(text, pos, end)
        if here:
            return here
    return _CLAUSE_END.search(text, pos, end)
_BELIEVE_IT = re.compile(r",?(?<!\s)\s*+and (?:i|we) (?:believe|trust|think) (?:it|him|her|them|that)\b.*+$",
                         re.IGNORECASE)
TOLD_REACH = 1_000  # how far after "my friend told me" an "and I believe it" is looked for
_ANSWER = re.compile(
    r"^(?:that\s+)?(?:it(?:'s| is| was| would be| should be|s)|its|the answer(?: is|'s| would be| should be| was)|"
    r"the answer to (?:that|this|it) is|that'?s|thats|they(?:'re| are)|he(?:'s| is)|she(?:'s| is))\s+(?P<a>.+)$",
    re.IGNORECASE,
)
# x may end in white space only before a comma or at its 3-character minimum: the match is the same as
# with ``,?\s*`` after any x, without rescanning a long run of white space for each of x's 200 lengths.
_RIGHT_TAG = re.compile(r"^(?P<x>[^?]{3,200}?)(?:(?<!\s)|(?=,)|(?<=^[^?]{3})),?\s*+"
                        r"(?:right|correct|no|yeah|isn'?t it)\s*+\?++\s*+$", re.IGNORECASE)
_VERBISH = re.compile(
    r"\b(?:is|are|was|were|be|been|can|cannot|can't|will|won't|do|does|did|has|have|had|should|would|could|must|"
    r"cause|causes|make|makes|means)\b|\w(?:ed|es)\b", re.IGNORECASE)
# the counted thing ends before a white-space run, never inside one (a long run was rescanned per end)
_HOW_MANY = re.compile(r"^how many\s++(.+?)(?<!\s)\s++(?:are there|were there)\s*(.*)$", re.IGNORECASE)
_WH = re.compile(r"^(?:what|who|whom|whose|which|where|when|why|how)\b", re.IGNORECASE)
_AUX_NEG = re.compile(r"\b(is|are|was|were|can|will|does|do|did|has|have|should|would|could|must)\b(?! not)",
                      re.IGNORECASE)
_FILLER = re.compile(r"^(?:(?:um+|uh+|well|so|ok(?:ay)?|hey|hi|hello|like|yeah|yes|no|oh|ah|lol),?\s+)+",
                     re.IGNORECASE)


def _find_question(text: str, sentences: list[tuple[int, int]]) -> tuple[str, tuple[int, int]] | None:
    """The question the user asks: the first sentence ending in '?' that is a real question, not a hedge."""
    best = None
    for start, end in sentences:
        raw = text[start:end].strip()
        body = _FILLER.sub("", raw)
        body = re.sub(r"^(wh(?:at|o|ere|en))s\b", r"\1 is", body, flags=re.IGNORECASE)
        if not raw.endswith("?"):
            if not re.match(r"^(?:what|who|which|where|when|how)(?:'s|\s+(?:is|are|was|were|do|does|did|many|much))\b",
                            body, re.IGNORECASE):
                continue
            body = body.rstrip(" .!") + "?"
        lowered = body.lower()
        if re.match(r"^(?:isn'?t|isnt|wasn'?t|aren'?t|right|correct|is that|am i right|maybe|could it be)\b", lowered):
            continue
        if _RIGHT_TAG.match(body) and not _WH.match(body):
            continue
        body = re.sub(r",\s*+(?:isn'?t it|isnt it|right|no|wasn'?t it|or is it)\b.*+$", "?", body, flags=re.IGNORECASE)
        # a question after a presupposition: "since X, how do I ...?" -> the part after the comma
        part = re.split(r",\s*(?=(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am)\b)", body,
                        maxsplit=1, flags=re.IGNORECASE)
        # "my neighbour swears X — can I take it?": the question is the part after the dash
        part = re.split(r"\s[\u2014\u2013-]+\s", part[-1])
        body = part[-1]
        candidate = (body[0].upper() + body[1:], (start, end))
        if _WH.match(body):
            return candidate
        best = best or candidate
    return best


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _finish(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;:-\"'")
    text = re.sub(r"\bits\b", "it's", text) if text.lower().startswith("its ") else text
    text = _capitalise(text)
    return text if text.endswith((".", "!")) else text.rstrip("?!.") + "."


def _negate(clause: str) -> str:
    """'it's Y' -> 'it is not Y'; 'X can Y' -> 'X cannot Y'; otherwise 'It is not true that X'."""
    clause = re.sub(r"\b(it|that|he|she|there|what)'s\b", r"\1 is", clause, flags=re.IGNORECASE)
    clause = re.sub(r"\b(they|we|you)'re\b", r"\1 are", clause, flags=re.IGNORECASE)
    match = _AUX_NEG.search(clause)
    if match and match.start() < 60:
        word = match.group(1)
        replacement = "cannot" if word.lower() == "can" else f"{word} not"
        return clause[: match.start()] + replacement + clause[match.end():]
    return f"it is not true that {clause}"


def _rewrite(question: str, answer: str, negate: bool) -> str | None:
    """A declarative sentence from a wh-question and an answer, or from a yes/no question and 'yes' or
    'no' (None when the shape is not known)."""
    q = _FILLER.sub("", question.strip()).rstrip("?. ").strip()
    q = re.sub(r"^(?:do you know|can you tell me|tell me|any idea|does anyone know)\s+", "", q, flags=re.IGNORECASE)
    polar = _YES_NO.get(answer.strip(" .!,").lower())
    if polar is not None:
        return _polar_statement(q, polar != negate)
    not_ = " not" if negate else ""
    m = re.match(r"^(what|who|which|where|when)(?:'s|\s+is|\s+are|\s+was|\s+were)\s+(.+)$", q, re.IGNORECASE)
    if m and (m.group(1).lower() in {"where", "when"}
              or re.match(r"^(?:the|a|an|this|that|his|her|their|its|our|your|[A-Z0-9])", m.group(2))):
        verb = re.search(r"(?:'s|is|are|was|were)(?=\s)", q[len(m.group(1)):]).group(0)
        verb = "is" if verb == "'s" else verb
        subject = m.group(2)
        prep = {"where": " in", "when": " in"}.get(m.group(1).lower(), "")
        if subject.lower().startswith(("the ", "a ", "an ")):
            subject = subject[0].upper() + subject[1:]
        return f"{_capitalise(subject)} {verb}{not_}{prep} {answer}."
    m = re.match(r"^(?:what|which)\s+(\w+)\s+(is|are|was|were)\s+(.+)$", q, re.IGNORECASE)
    if m:
        return f"{_capitalise(answer)} {m.group(2)}{not_} {m.group(3)}."
    m = re.match(r"^who\s+(\w+)\s+(.+)$", q, re.IGNORECASE)
    if m and m.group(1).lower() not in {"is", "are", "was", "were", "do", "does", "did", "can", "will", "should"}:
        if negate:
            return f"{_capitalise(answer)} is not the one who {m.group(1)} {m.group(2)}."
        return f"{_capitalise(answer)} {m.group(1)} {m.group(2)}."
    m = _HOW_MANY.match(q)
    if m:
        tail = f" {m.group(2)}" if m.group(2) else ""
        return f"There are{not_} {answer} {m.group(1)}{tail}."
    return None


_YES_NO = {"yes": True, "yeah": True, "yep": True, "true": True, "no": False, "nope": False, "false": False}
_POLAR = re.compile(r"^(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|must|may|might)\s++(.+)$",
                    re.IGNORECASE)
_PRONOUNS = frozenset("i you we they he she it there this that these those people everyone anyone".split())
_DETERMINERS = frozenset("the a an my your his her our their its this that these those every some any".split())
# words that start a predicate after a determiner's noun phrase ("the moon landing | faked")
_PREDICATE_START = re.compile(r"^(?:a|an|the|really|actually|still|ever|true|real|safe|bad|good|better|worse|"
                              r"possible|dangerous|healthy|harmful|visible|necessary|legal|illegal|able|"
                              r"\w+(?:ed|en|ible|able|ful|ous|ive)|"
                              # the verb after 'does the X': the common ones in yes/no questions
                              r"make|cause|help|work|have|get|need|go|affect|increase|reduce|raise|lower|prevent|"
                              r"kill|mean|lead|live|use|contain|turn|grow|keep|stop|protect|damage|hurt|improve|"
                              r"change|boost|burn|die|come|know|feel|matter|count|show|say|give|take|spread)$",
                              re.IGNORECASE)


def _subject_length(words: list[str]) -> int:
    """How many of ``words`` (a yes/no question after its auxiliary) are its subject: a pronoun, a run of
    capitalised words ('the Great Wall of China'), a determiner with the words before the predicate, or
    one bare word."""
    first = words[0].lower()
    if first in _PRONOUNS:
        return 1
    if first.endswith("ing") and len(words) > 2:  # a gerund with its object: 'cracking your knuckles'
        return 3 if words[1].lower() in _DETERMINERS and len(words) > 3 else 2
    n = 1 if first in _DETERMINERS and len(words) > 1 else 0
    if words[n][:1].isupper():
        while n + 1 < len(words) and (words[n + 1][:1].isupper() or
                                      (words[n + 1] in ("of", "and") and n + 2 < len(words) and words[n + 2][:1].isupper())):
            n += 1
        return n + 1
    if n:  # the determiner's phrase runs to the first word that starts a predicate
        end = n + 1
        while end < len(words) - 1 and end < n + 3 and not _PREDICATE_START.match(words[end]):
            end += 1
        return end
    return 1


def _third_person(verb: str) -> str:
    low = verb.lower()
    if low in ("have", "be", "do", "go"):
        return {"have": "has", "be": "is", "do": "does", "go": "goes"}[low]
    if re.search(r"(?:s|sh|ch|x|z|o)$", low):
        return verb + "es"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ies"
    return verb + "s"


def _polar_statement(question: str, yes: bool) -> str | None:
    """'Does sugar make children hyperactive' + yes -> 'Sugar makes children hyperactive.'; + no ->
    'Sugar does not make children hyperactive.'; 'Is the Great Wall of China visible from space' + no ->
    'The Great Wall of China is not visible from space.'"""
    m = _POLAR.match(question)
    if not m:
        return None
    aux, words = m.group(1).lower(), m.group(2).split()
    if len(words) < 2:
        return None
    n = _subject_length(words)
    subject, rest = " ".join(words[:n]), words[n:]
    if not rest:
        return None
    subject = {"you": "you", "i": "I"}.get(subject.lower(), subject)
    if aux in ("do", "does") and yes:
        verb = _third_person(rest[0]) if aux == "does" else rest[0]
        return _finish(" ".join([subject, verb, *rest[1:]]))
    negated = "cannot" if aux == "can" else f"{aux} not"
    return _finish(" ".join([subject, aux if yes else negated, *rest]))


def _answer_part(content: str, question: str | None, tag: str) -> str | None:
    """The bare answer when the content is answer-shaped ('it's Sydney', 'the answer is X', or a short noun phrase)."""
    content = content.strip()
    match = _ANSWER.match(content)
    if match:
        return match.group("a").strip(" ,.?!")
    if tag == "isnt-it":
        return content.strip(" ,.?!")
    if question and _WH.match(question) and len(content.split()) <= 4 and not _VERBISH.search(content):
        return content.strip(" ,.?!")
    return None


def _claim(content: str, question: str | None, negate: bool, tag: str) -> tuple[str, str | None]:
    """(declarative claim, the answer as stated): the answer is set when the content answers the question.

    A claim never wraps the question: where no sentence can be built from the question and the answer,
    the claim is the bare answer ("Taylor, Cerf, and Kahn."; "because X" -> "X."). A denied answer
    ("I don't think it's Canberra") gives no ``answer``: its claim states the denial."""
    answer = _answer_part(content, question, tag)
    if answer and question and tag != "told":
        rewritten = _rewrite(question, answer, negate)
        if rewritten:
            polar = answer.strip(" .!,").lower() in _YES_NO  # the sentence carries a yes or no, not the word
            return rewritten, None if negate or polar else answer
        bare = re.sub(r"^(?:because|cuz|cos|coz|since)\s++", "", answer, flags=re.IGNORECASE)
        return _finish(f"not {bare}" if negate else bare), None if negate else answer
    if answer and (tag == "isnt-it" or _ANSWER.match(content)):
        return _finish(f"it is {'not ' if negate else ''}{answer}"), None
    return _finish(_negate(content) if negate else content), None


# An answer that is a list stays whole: "Taylor, Cerf, and Kahn" is not cut at ", and".
_LIST_ITEM_WORDS = 4
_BARE_COPULA = re.compile(r"(?:that\s+)?(?:it'?s|it is|its|it was|that'?s|thats|they'?re|they are|he'?s|she'?s|"
                          r"it would be|the answer is)", re.IGNORECASE)
# em and en dashes end a clause like " - " does (``_CLAUSE_END``); entered only from a run's start
_DASH_END = re.compile(r"(?<!\s)\s*+[\u2014\u2013]")
_MAX_CONTINUE = 8


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _is_list(text: str, start: int, clause: re.Match[str], end: int) -> bool:
    """Whether the ', and' at ``clause`` joins the last item of a list of short items ("A, B, and C")."""
    if not re.fullmatch(r",\s*+and", clause.group(), re.IGNORECASE):
        return False
    parts = text[start:clause.start()].split(",")
    if len(parts) < 2 or any(not 1 <= _words(p) <= _LIST_ITEM_WORDS for p in parts[1:]) or _words(parts[0]) > 8:
        return False
    nxt = re.search(r"[,;:.!?\n]", text[clause.end():end])
    last = text[clause.end(): clause.end() + nxt.start()] if nxt else text[clause.end():end]
    return 1 <= _words(last) <= _LIST_ITEM_WORDS


def _content_end(text: str, start: int, limit: int) -> int:
    """Where a cue's content ends: the sentence end, or the first clause end after its first character;
    a clause end inside a list ("A, B, and C"), or right after a bare "it's" ("it's because X"), is
    passed over (at most ``_MAX_CONTINUE`` times)."""
    end = limit
    sentence = _SENTENCE_END.search(text, start, limit)
    if sentence:
        end = sentence.start()
    pos = start
    for _ in range(_MAX_CONTINUE):
        clause = _clause_end(text, pos, end)
        dash = _DASH_END.search(text, pos, end)
        if dash and dash.start() > start + 1 and (clause is None or dash.start() < clause.start()):
            clause = dash
        if not clause or clause.start() <= start + 1:
            return end
        if _is_list(text, start, clause, end) or _BARE_COPULA.fullmatch(text[start:clause.start()].strip(" ,")):
            pos = clause.end()
            continue
        return clause.start()
    return end


def _presupposition_cues(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each premise cue, as the one-regex form in the comment above ``_PREMISE`` finds them:
    the match starts at the first position of the white space before the keyword that follows the text's
    start, a . ! ? or a line break (directly, or after one white-space character)."""
    for match in _PREMISE.finditer(text):
        run_start, key = match.start(), match.end() - len(match.group().lstrip())
        if run_start == 0 or text[run_start - 1] in ".!?":
            yield run_start, match.end()
            continue
        newline = text.find("\n", run_start, key)  # after a line break inside the run
        if newline >= 0:
            yield newline + 1, match.end()


def _overlaps(cues: list[_Cue], starts: list[int], start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of ``cues`` (disjoint, sorted by start; ``starts`` their starts)."""
    i = bisect.bisect_right(starts, start) - 1
    if i >= 0 and start < cues[i].end:
        return True
    return i + 1 < len(cues) and cues[i + 1].start < end


# A premise in mid-sentence ("ok random question since X, should I ..."): read as one only when a question
# follows and the keyword is not a time ("it's been five years since ...", "ever since").
_MID_PREMISE = re.compile(r"\b(?:since|given that|seeing as|now that)\b", re.IGNORECASE)
_TIME_BEFORE = re.compile(r"(?:\b(?:ever|been|years?|months?|weeks?|days?|hours?|ages|long|time|ago|first|last|"
                          r"only|not|even)\s*+)$", re.IGNORECASE)
_TIME_AFTER = re.compile(r"\s*+(?:then|yesterday|today|last|this|the (?:start|beginning|day|funeral|divorce|accident|"
                         r"diagnosis|birth|war|summer|winter|spring|autumn)|birth|childhood|school|university|\d|"
                         r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*+\b|(?:mon|tues|wednes|thurs|fri|"
                         r"satur|sun)day|christmas|easter|covid|lockdown|summer|winter|spring|autumn|forever|a (?:kid|child|"
                         r"baby|teenager)|i was|we were|he was|she was|they were|my \w+ (?:died|passed|left))",
                         re.IGNORECASE)


def _mid_premise_cues(text: str) -> Iterator[tuple[int, int]]:
    for match in _MID_PREMISE.finditer(text):
        start = match.start()
        if _TIME_BEFORE.search(text, max(0, start - 20), start) or _TIME_AFTER.match(text, match.end()):
            continue
        yield start, match.end()


# "I think it's because X": the reason is the answer the cue before reads, not a cue of its own
_ANSWER_BECAUSE = re.compile(r"\s*+(?:it'?s|its|it is|it was|that'?s|thats|that is)\s*+", re.IGNORECASE)


def _find_cues(text: str) -> list[_Cue]:
    """Every cue, sorted; where two overlap the one of the earlier (stronger) kind in ``_CUES`` wins."""
    cues: list[_Cue] = []
    tables = [((m.start(), m.end()) for m in regex.finditer(text)) for regex, *_ in _CUE_RES]
    tables += [_presupposition_cues(text), _mid_premise_cues(text)]
    kinds = [(k, n, c, t) for _, k, n, c, t in _CUE_RES] + [_PREMISE_CUE, ("presupposed", False, 0.6, "mid")]
    for found, (kind, negate, confidence, tag) in zip(tables, kinds):
        starts = [c.start for c in cues]
        # a kind's own matches never overlap each other: check them only against the stronger kinds
        fresh = [_Cue(a, b, kind, negate, confidence, tag) for a, b in found if not _overlaps(cues, starts, a, b)]
        cues = sorted(cues + fresh, key=lambda c: c.start)
    return [c for i, c in enumerate(cues) if c.tag != "reason" or i == 0
            or not _ANSWER_BECAUSE.fullmatch(text, cues[i - 1].end, c.start)]


# --- what is not a belief: framing around a cue ---
# "you're the first person I think to ask", "everything I thought I knew": a relative clause, not a claim
_RELATIVE_HEAD = re.compile(r"\b(?:person|one|people|thing|things|anyone|someone|everyone|anything|everything|something|"
                            r"all|what|who|whom|which|place|way|reason|than|as|how|when|where|why|if|whether)\s*+$",
                            re.IGNORECASE)
_FRAMING_CONTENT = re.compile(
    r"(?:to|about|of|back|over|twice|otherwise|you(?!\s++(?:should|shouldn'?t|must|mustn'?t|need|needs|have|has|can|"
    r"can'?t|cannot|will|won'?t|get|catch|lose|swallow|only|always|never)\b)|you'?re|you'?ll|you'?d|youre|how|what|"
    r"why|where|when|who|whether|if|a (?:silly|stupid|dumb|daft|random|weird) question|"
    r"nothing|exactly|anyone|anything|everything|so|too|this is (?:a )?(?:silly|stupid|dumb|daft|random|weird)|"
    r"(?:it'?s|its|this|that|that'?s|this is|it is)\s++(?:probably\s++|just\s++|a\s++bit\s++|all\s++)?(?:silly|stupid|dumb|daft|"
    r"late|a lot|weird|strange|random|petty|irrational|ridiculous|nothing|fine|ok|okay|normal|a (?:silly|stupid|dumb|daft|"
    r"random|weird|long shot) question|a long shot|been|going|my fault|me|overthinking|hard|a lot to ask))\b",
    re.IGNORECASE)
# hedges about the user's own state ("maybe I'm overthinking", "I guess I just needed to talk") are framing
_SELF_HEDGE = re.compile(r"(?:i|i'?m|im|i'?ll|i'?ve|i'?d|i was|we|we'?re|me|my|it'?s (?:just|nothing)|just|not|"
                         r"nobody|no one|someone|somebody)\b", re.IGNORECASE)
# a hedge word right after the speaker ("I'm probably overthinking it")
_SPEAKER_BEFORE = re.compile(r"\b(?:i'?m|im|i am)\s*+$", re.IGNORECASE)
_SPEAKER_PLAN = re.compile(r"(?:going to|gonna|about to|planning)\b", re.IGNORECASE)  # "I'm probably going to ..." is a plan
_QUESTION_AFTER = re.compile(r"\s*+,?\s*+(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am|will|would|"
                             r"i need|please|help)\b", re.IGNORECASE)
_PREMISE_VERB = re.compile(r"\b(?:is|are|am|was|were|can|can't|cannot|will|won't|do|does|don't|doesn't|has|have|"
                           r"should|must|means?|causes?|makes?|need|needs|gets?|only|never|always)\b|'s\b|'re\b|"
                           r"\b(?:we|you|they|i|babies|people|kids|children) \w+|\w(?:es|s)\b", re.IGNORECASE)


# a reason or premise that tells the user's own story ("because I was tired", "since my wife died"), or opens
# with a time ("because the last time she had it"), is context, not a claim about the world
_PERSONAL_WORDS = frozenset("i i'm im i've ive i'd i'll we we're we've our us my me he she he's she's his him "
                            "her hers".split())
_STORY_START = re.compile(r"(?:the last time|last time|when|after|before|then|it was|it'?s been|there was|that was|"
                          r"of course|otherwise|now|today|yesterday)\b", re.IGNORECASE)
_STORY_WORDS = frozenset("""died passed divorce funeral left sad miss missed lonely anxious stressed exhausted tired
upset""".split())


_FEELING_BEFORE = re.compile(r"\b(?:annoyed|angry|upset|sad|worried|scared|afraid|nervous|frustrated|confused|stressed|"
                             r"anxious|embarrassed|ashamed|guilty)\s*+,?\s*+$",
                             re.IGNORECASE)


def _general_reason(content: str) -> bool:
    """Whether a reason ("because X") or a premise with no question after it reads as a general claim: three
    words or more with a verb, no first- or third-person story, no feelings or small talk."""
    tokens = _TOKEN.findall(content.lower())
    if len(tokens) < 3 or _STORY_START.match(content) or not (_PREMISE_VERB.search(content) or len(tokens) >= 5):
        return False
    return not (_PERSONAL_WORDS.intersection(tokens) or _STORY_WORDS.intersection(tokens))


_ASIDE = re.compile(r",\s?(?:probably|maybe|perhaps|possibly)\b", re.IGNORECASE)
_ASIDE_VERB = re.compile(r"\b(?:is|are|was|were|will|would|can|could|should|does|do|did|has|have|had|must)\b|n't|'s\b|"
                         r"'re\b", re.IGNORECASE)
_THEIR_OWN_PLAN = re.compile(r"(?:he|she|they)(?:'s|'re| is| are| was| were)?\s++(?:going to|gonna|just|planning)\b",
                             re.IGNORECASE)


_SELF_STATE = re.compile(r"(?:i (?:\w+ )?(?:think|know|guess|suppose)|i'?m (?:pretty |quite )?sure)\s++"
                         r"(?:i'?m|i am|im)\b", re.IGNORECASE)


def _self_state(text: str, belief: Belief) -> bool:
    """"I think I'm just being paranoid": the user's view of their own state, a belief only when the message
    states nothing else (beside a claim about the world it is framing)."""
    piece = text[belief.span[0]:belief.span[1]]
    return _words(piece) <= 9 and bool(_SELF_STATE.match(piece))


def _sentence_start(text: str, pos: int) -> bool:
    """Whether only white space, filler or a lead word lies between ``pos`` and the previous sentence end."""
    before = text[max(0, pos - 40):pos]
    cut = max(before.rfind(ch) for ch in ".!?\n")
    if cut < 0 and pos > 40:
        return False
    rest = before[cut + 1:].strip()
    return not rest or bool(_LEAD.fullmatch(rest + " "))


def _framing(cue: _Cue, text: str, content: str) -> bool:
    """Whether a cue's content is framing around the message, not a claim ("I think to ask")."""
    if cue.kind == "reported" and re.match(r"(?:i|i'?m|im|i'?ve|i was|you|you'?re)\b", content, re.IGNORECASE) \
            and _words(content) <= 6:
        return True  # "everyone keeps saying I'm strong", "my therapist says I catastrophise"
    if cue.kind == "reported" and _THEIR_OWN_PLAN.match(content):
        return True  # "my mate says he's going to get fit": what they will do, not a claim
    if _FRAMING_CONTENT.match(content) and not (cue.tag == "isnt-it" and _words(content) >= 6):
        return cue.kind not in ("reported",) or content.lower().startswith(("to ", "about ", "of "))
    if cue.kind in ("explicit", "hedged", "negated") and cue.tag != "isnt-it":
        if _RELATIVE_HEAD.search(text, max(0, cue.start - 12), cue.start):
            return True
    if cue.kind == "hedged" and cue.tag == "" and (_SELF_HEDGE.match(content)
                                                        or (_SPEAKER_BEFORE.search(text, max(0, cue.start - 12), cue.start)
                                                            and not _SPEAKER_PLAN.match(content))):
        return True  # "I'm probably overthinking it": about the speaker, not the world
    return False


def _outside_question(question_span: tuple[int, int] | None, b: Belief) -> Belief:
    """An answer must say something the question does not: a belief stated inside the question sentence
    itself ("I think it's right?right?", no space to split it), or whose answer only repeats the question's
    words ("What is the capital? I think it's What is the capital?"), answers no question. It keeps its
    claim, without question or answer."""
    if b.answer is None or not b.question:
        return b
    inside = question_span is not None and b.span[0] < question_span[1] and question_span[0] < b.span[1]
    if inside or b.answer in b.question:
        return b.model_copy(update={"question": None, "answer": None})
    return b


def extract_beliefs(text: str) -> BeliefReport:
    """All beliefs stated in one user message, with the question it asks (see the module docstring).

    A message longer than ``HEAD_CHARS + TAIL_CHARS`` is read through a window: its first ``HEAD_CHARS``
    and last ``TAIL_CHARS`` characters (cut at sentence breaks), so a 200,000-character message costs
    about what a 5,000-character one does; spans are offsets in the whole message, and the report says
    ``truncated=True``. Beliefs and a question in the unread middle are not found."""
    text = validate_text(text, "text")
    view = window(text, HEAD_CHARS, TAIL_CHARS)
    report = _extract(view.text)
    if not view.truncated:
        return report
    beliefs = [b.model_copy(update={"span": view.span_to_original(*b.span)}) for b in report.beliefs]
    return report.model_copy(update={"beliefs": beliefs, "truncated": True})


# --- plans: "I'll feed the ducklings bread this weekend" -> "Feeding the ducklings bread is fine." ---
# A plan rests on a belief that doing it is fine; its claim has one generic form, '<doing P> is fine.'
_PLAN_FUTURE = re.compile(
    r"\b(?:(?:i'?m|i am|im|we'?re|we are)\s++(?:going to|gonna|planning (?:to|on)|about to|thinking (?:of|about)|"
    r"off to|hoping to)|(?:i|we)(?:'ll| will| shall)(?:\s++(?:just|definitely|probably|still|always|then))?|"
    r"(?:i'?ve|i have|we'?ve|we have|i|we)\s++(?:decided|chosen) (?:to|on)|(?:my|our) plan is to|"
    r"(?<![\w'] )(?:going to|gonna|planning (?:to|on)|about to|thinking of))\s++(?=[a-z])", re.IGNORECASE)
_PLAN_NOW = re.compile(
    r"(?:(?:i'?m|i am|im|we'?re|we are)\s++)?(?:not\s++)?(?:just\s++|already\s++|finally\s++)?(?=[a-z]+ing\b)|"
    r"(?:(?:i'?ve|i have|we'?ve|we have)\s++(?:just\s++|already\s++|finally\s++)?|just\s++|already\s++)"
    r"(?=[a-z]+ed\b|(?:bought|put|given|gave|taken|took|got|thrown|threw|kept|sent|left|made)\b)", re.IGNORECASE)
_NOT_A_PLAN = re.compile(
    r"(?:be|feel|feeling|felt|miss|missing|missed|cry|crying|cried|try|trying|tried|ask|asking|asked|say|said|tell|telling|"
    r"told|need|needed|want|wanted|have|having|had|lose|losing|lost|die|dying|died|forget|cope|coping|manage|survive|wait|"
    r"waiting|never|ever|always|keep|kept|let|go|going|see|seeing|sleep|sleeping|look|looking|do|doing|did|talk|talking|"
    r"write|writing|think|thinking|thought|remember|admit|regret|struggling|struggled|getting|wondering|wondered|hoping|"
    r"hoped|reading|dealing|drowning|spiralling|spiraling|shaking|panicking|panicked|worrying|worried|being|living|"
    r"working|worked|nothing|something|anything|everything|morning|evening|during|according|reaching|handling|hurting|"
    r"grieving|coming|passed|started|finished|moved|retired|divorced|married|engaged|promoted|fired|sacked|diagnosed|"
    r"scared|annoyed|stressed|exhausted|tired|excited|pleased|interested|confused|surprised|shocked|embarrassed|"
    r"ashamed|bored|relieved|obsessed|convinced|amazed|lying|sitting here|listening|sorry|mean|like|love|hate|hope)\b",
    re.IGNORECASE)
_PLAN_REASON = re.compile(
    r"\b(?:so (?:that |she |he |they |it |i |we |my |the )?|to (?:be|make|help|stop|prevent|keep|get|avoid|sweat|boost|"
    r"protect|detox|flush|cure|fix|clean|save|pay|prove|build|treat|kill|clear|bring|feed|warm|cool|speed|strengthen)|"
    r"in order to|because|since|before|in case|this (?:weekend|week|morning|afternoon|evening|year|summer|winter)|"
    r"tonight|tomorrow|next (?:week|weekend|month|year|time)|like (?:we|i|they|my \w+) (?:always|usually) (?:did|do)|"
    r"as usual|every (?:day|night|morning|week)|instead of|rather than)\b", re.IGNORECASE)
_PLAN_TIME = re.compile(
    r"\s*+\b(?:this (?:weekend|week|morning|afternoon|evening|year|summer|winter)|tonight|tomorrow(?: morning| night)?|"
    r"next (?:week|weekend|month|year|time)|later|today|soon|again|first thing|on (?:mon|tues|wednes|thurs|fri|satur|sun)"
    r"day|like (?:we|i|they|my \w+) (?:always|usually) (?:did|do)|as usual|as always|anyway|to be honest)\b",
    re.IGNORECASE)
_IRREGULAR_ING = {"bought": "buying", "put": "putting", "given": "giving", "gave": "giving", "taken": "taking",
                  "took": "taking", "got": "getting", "thrown": "throwing", "threw": "throwing", "kept": "keeping",
                  "sent": "sending", "left": "leaving", "made": "making", "be": "being", "see": "seeing",
                  "die": "dying", "lie": "lying", "tie": "tying", "go": "going", "do": "doing"}


def _gerund(verb: str) -> str:
    """'feed' -> 'feeding', 'take' -> 'taking', 'sit' -> 'sitting', 'installed' -> 'installing'."""
    low = verb.lower()
    if low in _IRREGULAR_ING:
        return _IRREGULAR_ING[low]
    if low.endswith("ing"):
        return low
    if low.endswith("ied"):
        return low[:-3] + "ying"
    if low.endswith("ed") and len(low) > 4:
        return low[:-2] + "ing"  # installed -> installing, moved -> moving, stopped -> stopping
    if low.endswith("ee") or low.endswith("ye") or low.endswith("oe"):
        return low + "ing"
    if low.endswith("e") and len(low) > 2:
        return low[:-1] + "ing"
    vowels = "aeiou"
    if (len(low) <= 4 and len(low) >= 3 and low[-1] not in vowels + "wxy" and low[-2] in vowels
            and low[-3] not in vowels):
        return low + low[-1] + "ing"  # sit -> sitting, stop -> stopping
    return low + "ing"


def _plan_claim(body: str) -> str:
    """'feed the ducklings bread this weekend like we always did' -> 'Feeding the ducklings bread is fine.'"""
    body = _PLAN_TIME.sub("", body).strip(" ,.;:-\"'")
    verb, _, rest = body.partition(" ")
    phrase = f"{_gerund(verb)} {rest}".strip()
    return _finish(f"{phrase} is fine")


def _plan_beliefs(text: str, sentences: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[Belief]:
    """Plans in sentences that hold no belief yet: a future cue ("I'll", "going to", "planning to") before a
    verb that is not about the user's feelings; or, at the start of a sentence, an action ("taking a new
    loan", "just bought a baby walker") that gives a reason or a time ("so she walks sooner", "tonight")."""
    found: list[Belief] = []
    for start, end in sentences:
        if any(a < end and start < b for a, b in taken):
            continue
        sentence = text[start:end]
        lead = len(sentence) - len(_FILLER.sub("", sentence.lstrip()))
        match = _PLAN_FUTURE.search(text, start, end)
        confidence = 0.6
        if match is None or _NOT_A_PLAN.match(text, match.end()):
            match = _PLAN_NOW.match(text, start + lead, end)
            if (match is None or _NOT_A_PLAN.match(text, match.end())
                    or not _PLAN_REASON.search(text, match.end(), end)):
                continue
            confidence = 0.5
        body_start = match.end()
        body_end = _content_end(text, body_start, end)
        body = text[body_start:body_end].strip(" ,:;\"'")
        if _words(body) < 2 or body.endswith("?") or body.split(" ", 1)[0].lower() in _DETERMINERS:
            continue  # "going to a farm stay": a place to go, not a plan to act on a belief
        found.append(Belief(claim=_plan_claim(body), span=(match.start(), body_start + len(text[body_start:body_end].rstrip(" ,:;\"'"))),
                            polarity="affirms", kind="plan", question=None, confidence=confidence))
    return found


# --- tag questions anywhere: "..., and heart attacks always hurt, right?" even beside other beliefs ---
# Looked for in a sentence's last 40 characters only, so a long sentence costs no more than a short one; a
# white-space run is entered only from its start (or its comma), so the pattern is linear on any text too.
_TAG_QUESTION = re.compile(
    r"(?:,\s*+|(?<![\s,])\s++)(?:right|correct|true|surely|isn'?t it|isn'?t that|is it|aren'?t they|are they|wasn'?t it|"
    r"weren'?t they|don'?t they|do they|doesn'?t it|does it|didn'?t (?:it|they|he|she|we)|did (?:it|they|he|she)|"
    r"won'?t it|will it|wouldn'?t it|can'?t it|can it|shouldn'?t (?:it|i|we)|(?:isn|wasn)'?t (?:he|she))\s*+\?++\s*+$",
    re.IGNORECASE)
_TAG_REACH = 40
# the last clause before the tag: "I had no chest pain, and heart attacks always hurt, right?"
_CLAUSE_JOIN = re.compile(r",\s*+(?:and|but|so)\s++", re.IGNORECASE)
# "That's true, isn't it?": the claim is the sentence before
_POINTS_BACK = re.compile(r"(?:that|this|it)(?:'s| is)\s++(?:true|right|correct|a fact|real)", re.IGNORECASE)
# "Is that right?", "Was I right?": a question about the sentence before, never a claim itself
_ASKS_BACK = re.compile(r"(?:is|was|am|are|were)\s++(?:that|this|it|i|we)\s++(?:actually\s++|really\s++)?"
                        r"(?:right|true|correct|ok(?:ay)?|wrong|a myth)\s*+\?", re.IGNORECASE)
# "I told her that ...", "I might be wrong but I think ...": the speaker's frame before the claim
_REPORT_FRAME = re.compile(r"(?:[^,.!?]{0,40}?\bbut\s++)?(?:i|we)\s++(?:\w+\s++){0,2}?(?:think|thought|thinking|"
                           r"told\s++\w+|said|say|read|heard|believed?|figured?|assumed?|reckon(?:ed)?)\s++(?:that\s++)?",
                           re.IGNORECASE)


def _asked_about(text: str, start: int, end: int) -> Belief | None:
    """The claim in the sentence before "Is that right?": that sentence without the speaker's frame ("I told
    her that") and without a closing ", so ..." (what the speaker did about it)."""
    raw = text[start:end]
    a = start + len(raw) - len(raw.lstrip())
    frame = _REPORT_FRAME.match(text, a, end)
    if frame:
        a = frame.end()
    b = end
    so = text.rfind(", so ", a, end)
    if so > a:
        b = so
    body = text[a:b].rstrip(" .!?,")
    if _words(body) < 3 or not (_VERBISH.search(body) or _PREMISE_VERB.search(body)) or _FIRST_PERSON_START.match(body):
        return None
    return Belief(claim=_finish(body), span=(a, a + len(body)), polarity="affirms", kind="hedged", question=None,
                  confidence=0.6)


def _tag_beliefs(text: str, sentences: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[Belief]:
    """A statement asked to be confirmed ("X, aren't they?", "X, right?") in a sentence that holds no belief
    yet: the last clause before the tag, or the sentence before when the tag follows "that's true"."""
    found: list[Belief] = []
    previous: tuple[int, int] | None = None
    for start, end in sentences:
        here, previous = previous, (start, end)
        if any(a < end and start < b for a, b in taken):
            continue
        tail_from = max(start, end - _TAG_REACH)
        tag = _TAG_QUESTION.search(text[tail_from:end])
        if not tag:
            continue
        body_end = tail_from + tag.start()
        body_start = start
        for join in _CLAUSE_JOIN.finditer(text, start, body_end):
            if _words(text[join.end():body_end]) >= 3:
                body_start = join.end()
        raw = text[body_start:body_end]
        lead = _LEAD.match(raw.lstrip())
        body_start += len(raw) - len(raw.lstrip()) + (lead.end() if lead else 0)
        body = text[body_start:body_end].strip()
        if _POINTS_BACK.fullmatch(body) and here is not None:
            body_start, body_end = here
            raw = text[body_start:body_end]
            colon = raw.find(": ")
            body_start += colon + 2 if 0 <= colon < len(raw) - 2 else len(raw) - len(raw.lstrip())
            body = text[body_start:body_end].strip().rstrip(".!")
        if (_words(body) < 3 or not (_VERBISH.search(body) or _PREMISE_VERB.search(body)) or _REAL_QUESTION.match(body) or _WH.match(body)
                or _FIRST_PERSON_START.match(body)):
            continue
        found.append(Belief(claim=_finish(body), span=(body_start, body_start + len(body)), polarity="affirms",
                            kind="hedged", question=None, confidence=0.6))
    return found


# --- a general claim the user draws a conclusion from: "Old people need less sleep anyway, so I ..." ---
_SO = re.compile(r"(?:,\s*+|(?<![\s,])\s++)so\s++(?!(?:much|many|far|long|bad|good|hard|tired|sad|sorry)\b)",
                 re.IGNORECASE)


def _so_beliefs(text: str, sentences: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[Belief]:
    """The clause that opens a sentence and leads to a "so ...": a belief when it reads as a general claim
    (``_general_reason``) of five words or more, in a sentence that holds no belief or framing yet."""
    found: list[Belief] = []
    for start, end in sentences:
        if any(a < end and start < b for a, b in taken):
            continue
        so = _SO.search(text, start, end)
        if not so:
            continue
        raw = text[start:so.start()]
        lead = _LEAD.match(raw.lstrip())
        body_start = start + len(raw) - len(raw.lstrip()) + (lead.end() if lead else 0)
        body = text[body_start:so.start()].rstrip(" ,")
        if _words(body) < 5 or not _general_reason(body) or _FIRST_PERSON_START.match(body):
            continue
        found.append(Belief(claim=_finish(body), span=(body_start, body_start + len(body)), polarity="affirms",
                            kind="explicit", question=None, confidence=0.5))
    return found


# --- bare assertions: "vitamins are natural so you can't take too many." with no cue at all ---
# Word lists for ``_bare_score``, looked up per word (1- to 3-word phrases) in one lower-cased pass: a long
# IGNORECASE alternation tried at every character cost about 0.3 ms per message.
_GENERAL_WORDS = frozenset("""always never all every everyone everybody nobody only completely totally 100% guaranteed
definitely proven can't cant cannot won't wont doesn't doesnt don't dont isn't isnt aren't arent any just basically
literally actually real fake myth safe dangerous harmless cure cures cause causes caused means prevent prevents kill
kills spread spreads work works boost boosts detox prove proves science studies""".split()) | frozenset({
    "no such thing", "no way", "bad for", "good for", "make you", "makes you", "give you", "gives you", "that's why",
    "thats why", "no coincidence", "it's a fact", "everyone knows"})
_FRAMING_PHRASES = frozenset("""sad sadness miss missing missed funeral buried grief grieving lonely anxious stressed
exhausted tired crying cried heartbroken struggling rough awful excited proud happy amazing thanks thank ty cheers sorry
please hello hi hey advice question honest appreciate appreciated listening ramble rambling promotion engaged dumb daft
silly settle arguing argument dinner lunch bugging confused nightmare annoyed furious wreck worried scared helpless
hopeless overwhelmed divorce breakup redundant fired degree exam holiday birthday wedding anniversary yesterday
wondering curious reckon view understand explain asking burden hoping lol dunno cope coping manage""".split()) | frozenset({
    "passed away", "great mood", "sanity check", "on my mind", "straight answer", "fed up", "drove me",
    "sleep properly", "breaking point", "broke up", "left me", "let go", "laid off", "last night", "this week",
    "talk to", "tell someone", "believe it", "hope you", "any help", "your help", "can help", "rubbish day", "bad day",
    "good day", "long day", "my head", "don't know", "dont know", "do not know", "no idea", "not sure", "trying to",
    "i feel", "feel like", "broke me", "breaks my heart", "in shock", "on edge", "get through"})
_SPEAKER = frozenset("i i'm im i've ive i'd i'll we we're we've".split())
_FIRST_PERSON_WORDS = frozenset("i i'm im i've ive i'd id i'll my me myself we we're our us".split())
_TOKEN = re.compile(r"[a-z0-9%]+(?:'[a-z]+)?")


def _count(tokens: list[str], phrases: frozenset[str]) -> int:
    """Non-overlapping 1- to 3-word phrases of ``phrases`` in ``tokens``, longest first at each word."""
    count = i = 0
    while i < len(tokens):
        for n in (3, 2, 1):
            if i + n <= len(tokens) and " ".join(tokens[i:i + n]) in phrases:
                count += 1
                i += n
                break
        else:
            i += 1
    return count

_GENERIC_VERB = re.compile(
    r"^(?:[\w'-]+\s++){0,6}?(?:is|are|was|were|can|can'?t|cannot|will|won'?t|does|doesn'?t|do|don'?t|has|have|should|"
    r"must|need|needs|makes?|causes?|means|gets?|goes|comes|turns?|stops?|helps?|keeps?|works?|lasts?|takes?|gives?|"
    r"[a-z]+s)\b", re.IGNORECASE)
_TAG = re.compile(r"(?:,?\s*+(?:right|isn'?t it|doesn'?t it|don'?t they|aren'?t they|won'?t it|can'?t they|didn'?t "
                  r"(?:it|we|they|he|she)|wasn'?t it|weren'?t they|is that (?:true|right|correct)|true|yeah|surely|no))"
                  r"\s*+[?.!]*+\s*+$", re.IGNORECASE)
_REAL_QUESTION = re.compile(r"(?:what|who|whom|whose|which|where|when|why|how|is|are|am|was|were|do|does|did|can|could|"
                            r"should|would|will|shall|has|have|may|might|must|any|anyone|tell me)\b", re.IGNORECASE)
# a message typed without full stops: a capitalised word that opens a sentence, after a lower-case word
_SOFT_BREAK = re.compile(r"(?<=[a-z0-9])\s++(?=(?:Thanks|Thank|Sorry|Any|Anyway|Hope|Hoping|It's|Its|Be|Just|"
                         r"Appreciate|Cheers|Talk|Please|Help|Love|Tell|What|How|Does|Is|Can|Should|Why|Ugh|Honestly|"
                         r"Really|Need|Want|Settle|Feeling)\b)")
_FIRST_PERSON_START = re.compile(r"(?:i|i'?m|im|i'?ve|ive|i'?d|i was|i had|we|we'?re|we'?ve|our|my|me|us)\b",
                                 re.IGNORECASE)
_LEAD = re.compile(r"(?:(?:right|ok|okay|so|well|hey|hi|hello(?: again)?|morning|evening|afternoon|ugh|honestly|"
                   r"random question|ok random question|quick question|genuine question|question|um+|uh+|oh|lol|anyway|"
                   r"also|and|but|just)\b[,.!:]*+\s*+)+", re.IGNORECASE)
# ``_bare_score`` weights and threshold, chosen on the 80% train part of conversations_c1.jsonl for about 11% of
# no-belief messages read as holding one (``benchmarks/belief_eval.py``); lower the threshold for recall.
BARE_GENERAL, BARE_TAG, BARE_FIRST_PERSON, BARE_FRAMING, BARE_PRONOUN = 2, 2, 1, 2, 2
BARE_THRESHOLD = 1  # the score a sentence with no cue needs to be read as a bare assertion (see ``_bare_score``)


def _bare_score(sentence: str) -> int:
    """How much a sentence with no cue reads as a claim about the world rather than framing: general words
    ("always", "cures", "can't"), a generic subject with a present-tense verb and a tag ("..., right?") count
    for it; a first-person start, words of feeling, thanks and small talk count against it."""
    body = sentence.strip()
    tagged = bool(_TAG.search(body))
    if body.endswith("?") and not tagged:
        if _REAL_QUESTION.match(body):
            return -10  # a question, not a claim
        tagged = True  # "the earth's core is as hot as the sun's surface?": a statement asked to be confirmed
    tokens = _TOKEN.findall(body.lower())
    if _SPEAKER.intersection(tokens):
        return -10  # the user telling of themselves ("most evenings I sit at the table"): not a claim to check
    score = BARE_GENERAL * min(2, _count(tokens, _GENERAL_WORDS)) + (BARE_TAG if tagged else 0)
    if _GENERIC_VERB.match(body):
        score += 1
    if _FIRST_PERSON_START.match(body):
        score -= BARE_FIRST_PERSON
    score -= BARE_PRONOUN * min(3, sum(t in _FIRST_PERSON_WORDS for t in tokens))
    score -= BARE_FRAMING * min(3, _count(tokens, _FRAMING_PHRASES))
    if _words(body) < 5:
        score -= 3
    return score


def _bare_beliefs(text: str, sentences: list[tuple[int, int]]) -> list[Belief]:
    """At most one bare assertion: the sentence that reads most as a claim, if it scores ``BARE_THRESHOLD``."""
    best: tuple[int, int, int] | None = None
    pieces: list[tuple[int, int]] = []
    for start, end in sentences:
        cut = start
        for m in _SOFT_BREAK.finditer(text, start, end):
            pieces.append((cut, m.start()))
            cut = m.end()
        pieces.append((cut, end))
    for start, end in pieces:
        raw = text[start:end]
        lead = _LEAD.match(raw.lstrip())
        offset = start + (len(raw) - len(raw.lstrip())) + (lead.end() if lead else 0)
        body = text[offset:end].rstrip()
        if not body:
            continue
        tag = _TAG.search(body)
        if tag and (_words(body[: tag.start()]) < 2 or _POINTS_BACK.fullmatch(body[: tag.start()].strip(" ,"))):
            continue  # "Is that right?" alone asks; "That's true, isn't it?" points at the sentence before
        score = _bare_score(body)
        if score >= BARE_THRESHOLD and (best is None or score > best[0]):
            best = (score, offset, offset + len(body))
    if best is None:
        return []
    _, a, b = best
    tag = _TAG.search(text, a, b)
    claim_end = tag.start() if tag else b
    body = text[a:claim_end].rstrip(" ,.!?x")
    cut = _clause_end(body, 1, len(body))
    claim_text = body[: cut.start()] if cut and _words(body[: cut.start()]) >= 3 else body
    return [Belief(claim=_finish(claim_text), span=(a, a + len(text[a:b].rstrip(" .!"))), polarity="affirms",
                   kind="hedged" if tag else "explicit", question=None, confidence=0.5)]


# content that only points back at what came before: "it", "said so", "said so, and ...", "told me that; ..."
_ANAPHOR_ONLY = re.compile(r"(?:it|her|him|them|that|so|you|this|me)\Z|(?:so|that|it|this)(?:\s*+[,;.!?]|\s++(?:and|but|or)\b)",
                           re.IGNORECASE)


def _extract(text: str) -> BeliefReport:
    language = guess_language(text)
    if language not in ("en", "und") or not text.strip():
        return BeliefReport(language=language if text.strip() else "und", beliefs=[], question=None)
    sentences = sentence_spans(text)
    found = _find_question(text, sentences)
    question = found[0] if found else None

    cues = _find_cues(text)
    starts = [c.start for c in cues]

    beliefs: list[Belief] = []
    # reasons, premises with no question after them and tag questions: read beside the other beliefs, never
    # in their stead (the fallbacks below still run as if these were not there)
    added: list[Belief] = []
    framing: list[tuple[int, int]] = []
    swallowed: set[int] = set()
    for i, cue in enumerate(cues):
        if i in swallowed:
            continue
        limit = cues[i + 1].start if i + 1 < len(cues) else len(text)
        end = _content_end(text, cue.end, limit)
        raw = text[cue.end:end]
        confidence = cue.confidence
        kind = cue.kind
        if cue.tag == "told":
            reach = min(len(text), cue.end + TOLD_REACH)
            stop = _SENTENCE_END.search(text, cue.end, reach)
            sentence_rest = text[cue.end: stop.start() if stop else reach]
            believed = _BELIEVE_IT.search(sentence_rest)
            if believed:  # "my friend told me X and I believe her": the user's own belief now
                raw, confidence, kind = sentence_rest[: believed.start()], 0.95, "explicit"
                swallowed.update(range(i + 1, bisect.bisect_left(starts, cue.end + believed.end())))
                end = cue.end + len(raw)
        content = raw.strip(" ,:;\"'")
        content = re.sub(r"^(?:that|like)\s+", "", content, flags=re.IGNORECASE)
        trailing = re.search(r"(?:\s++(?:and|or|but|so|then))+$", content[-40:], re.IGNORECASE)
        if trailing:  # "X and" where the next cue ("... and since Y") begins
            content = content[: len(content) - len(trailing.group())].rstrip(" ,")
        if len(_WORD.findall(content)) == 0 or _ANAPHOR_ONLY.match(content):
            continue  # "she always said so, and I ...": the claim is the one before, not what follows
        if cue.tag == "reason" and (not _general_reason(content)
                                    or _FEELING_BEFORE.search(text, max(0, cue.start - 30), cue.start)):
            continue  # "I'm annoyed because nobody gives a straight answer": why the user feels so
        if _framing(cue, text, content):
            framing.append((cue.start, end))  # its sentence is framing: no bare assertion is read there
            continue
        asks = True
        if cue.kind == "presupposed":
            # a premise that a question or request rests on ("since X, how do I ..."), or one that states a
            # general claim before what the user does about it ("Since X, I'm switching ...")
            stop = _SENTENCE_END.search(text, end, min(len(text), end + 300))
            asks = bool(_QUESTION_AFTER.match(text, end) or (stop is not None and text[stop.start()] == "?"))
            if not asks:  # "Since X, I'm switching ...": the premise ends at its comma
                head = content.split(",", 1)[0].rstrip()
                if not _general_reason(head):
                    continue
                content = head
            if not _PREMISE_VERB.search(content) or (cue.tag == "mid" and _words(content) < 3):
                continue
            if not asks and cue.tag == "mid":
                kind = "explicit"  # "..., since you lose most heat through your head anyway."
        if cue.tag == "reason":
            if _sentence_start(text, cue.start):
                kind = "presupposed"  # "Because organic food is more nutritious, I buy ..."
        if cue.tag == "isnt-it" and re.match(r"^(?:true|right|correct|so|obvious)\b", content, re.IGNORECASE):
            continue
        leading = len(raw) - len(raw.lstrip(" ,:;\"'"))
        claim, answer = _claim(content, question, cue.negate, cue.tag)
        if cue.tag == "reason":
            claim, answer = _finish(content), None
        if _ASIDE.search(text, max(0, cue.start - 2), cue.end) and answer is None and _words(content) <= 7 \
                and not _ASIDE_VERB.search(content):
            continue  # "I forget it, probably two or three times a week": an aside, no claim
        span_end = max(cue.end + leading + len(content) if content else end, cue.end)
        span_start = cue.start
        while span_start < span_end and text[span_start].isspace():  # a cue found from the space before it
            span_start += 1
        (beliefs if cue.tag != "reason" and asks else added).append(Belief(
            claim=claim, span=(span_start, span_end), polarity="denies" if cue.negate else "affirms",
            kind=kind,  # type: ignore[arg-type]
            question=question if (answer is not None or cue.kind == "presupposed") else None,
            answer=answer, confidence=confidence,
        ))

    if not beliefs:  # 'the answer is X' or 'X, right?' with no other cue
        for n, (start, end) in enumerate(sentences):
            sentence = text[start:end]
            if _ASKS_BACK.match(sentence.strip()):
                b = _asked_about(text, *sentences[n - 1]) if n else None
                if b is not None and not any(x < b.span[1] and b.span[0] < y for x, y in framing):
                    beliefs.append(b)
                continue
            m = re.search(r"\b(?:the answer is|the answer's|answer is)\s+(?P<a>[^.!?\n]{1,120})", sentence, re.IGNORECASE)
            tag = _RIGHT_TAG.match(sentence.strip())
            if m:
                claim, answer = _claim("the answer is " + m.group("a").strip(), question, False, "")
                beliefs.append(Belief(claim=claim, span=(start + m.start(), start + m.end()), polarity="affirms",
                                      kind="explicit", question=question if answer is not None else None,
                                      answer=answer, confidence=0.8))
            elif tag and not _WH.match(_FILLER.sub("", tag.group("x").strip())) \
                    and not _POINTS_BACK.fullmatch(_FILLER.sub("", tag.group("x").strip())):
                x = _FILLER.sub("", tag.group("x").strip())
                offset = start + sentence.index(x) if x in sentence else start
                claim, answer = _claim(x, question, False, "")
                beliefs.append(Belief(claim=claim, span=(offset, offset + len(x)), polarity="affirms", kind="hedged",
                                      question=question if answer is not None else None, answer=answer,
                                      confidence=0.6))
    added += _tag_beliefs(text, sentences, [b.span for b in beliefs + added])
    beliefs += _plan_beliefs(text, sentences, [b.span for b in beliefs + added])
    added += _so_beliefs(text, sentences, [b.span for b in beliefs + added] + framing)
    if not beliefs:
        beliefs = _bare_beliefs(text, [(a, b) for a, b in sentences if not any(x < b and a < y for x, y in framing)])
        beliefs = [b for b in beliefs if not any(a.span[0] < b.span[1] and b.span[0] < a.span[1] for a in added)]
    beliefs += added
    beliefs = [_outside_question(found[1] if found else None, b) for b in beliefs]
    if any(not _self_state(text, b) for b in beliefs):
        beliefs = [b for b in beliefs if not _self_state(text, b)]
    beliefs.sort(key=lambda b: b.span[0])
    return BeliefReport(language="en", beliefs=beliefs, question=question)
