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
_CUES: list[tuple[str, str, bool, float, str]] = [
    # negated first: "I don't think" must not be read as "I think"
    (rf"\b(?:i {_NEG_THINK} (?:really )?(?:think|believe|reckon|feel like)|i doubt|{_IM} not (?:convinced|so sure)|"
     rf"{_IM} not sure)\b(?:\s++that)?", "negated", True, 0.8, ""),
    (r"\b(?:i(?:'m| am|m) not (?:sure|certain),? but|not sure,? but|i could be wrong,? but|correct me if i'?m wrong,? but)\b",
     "hedged", False, 0.6, ""),
    (rf"\b(?:{_I} (?:really |honestly |strongly |still |always |genuinely )?(?:think|thnk|thinkk|believe|beleive|belive|"
     rf"reckon|know|remember|recall|learned|learnt|was taught|were taught|read|heard|thought|believed|was told)|"
     rf"{_IM} (?:pretty |quite |fairly |very |absolutely |completely |totally |so |100% |really )?"
     rf"(?:sure|certain|positive|convinced|confident)|pretty sure|(?:i )?bet|everyone knows|we all know|"
     rf"obviously|clearly|of course)\b(?:\s++that)?", "explicit", False, 0.9, ""),
    (r"\bmy (?:\w+ ){0,2}(?:friend|friends|mom|mum|mother|dad|father|teacher|doctor|brother|sister|boss|wife|husband|"
     r"partner|girlfriend|boyfriend|professor|grandma|grandpa|coworker|colleague|uncle|aunt|son|daughter)s? "
     r"(?:told me|says|said|told us|swears|insists|thinks|believes|claims)(?:\s++that)?\b", "explicit", False, 0.8, "told"),
    (r"\b(?:i guess|i suppose|i suspect|maybe|perhaps|probably|possibly|might be|could be|i wonder if)\b(?:\s++that)?",
     "hedged", False, 0.6, ""),
    (r"\b(?:isn'?t it|isnt it|is it not|wasn'?t it|aren'?t they|won'?t it|doesn'?t it|isn'?t that|could it be)\b",
     "hedged", False, 0.6, "isnt-it"),
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
_CLAUSE_END = re.compile(
    r",?(?<!\s)\s++(?:but|so|though|although|and i\b|and my\b|and that'?s|which is why|because|cuz|lol|haha)|"
    r",\s*+and\b|(?<!\s)\s++-++\s|,\s*+(?:right|is that (?:right|true|correct)|isn'?t it|no)\s*+(?=[?.!]|$)|"
    r",\s*+(?=(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am|are|will|would)\b)",
    re.IGNORECASE,
)
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
    """A declarative sentence from a wh-question and an answer (None when the shape is not known)."""
    q = _FILLER.sub("", question.strip()).rstrip("?. ").strip()
    q = re.sub(r"^(?:do you know|can you tell me|tell me|any idea|does anyone know)\s+", "", q, flags=re.IGNORECASE)
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


def _answer_part(content: str, question: str | None, tag: str) -> str | None:
    """The bare answer when the content is answer-shaped ('it's Sydney', 'the answer is X', or a short noun phrase)."""
    content = content.strip()
    match = _ANSWER.match(content)
    if match:
        return match.group("a").strip(" ,.?!")
    if tag == "isnt-it":
        return content.strip(" ,.?!")
    if question and len(content.split()) <= 4 and not _VERBISH.search(content):
        return content.strip(" ,.?!")
    return None


def _claim(content: str, question: str | None, negate: bool, tag: str) -> tuple[str, bool]:
    """(declarative claim, whether it answers the question)."""
    answer = _answer_part(content, question, tag)
    if answer and question:
        rewritten = _rewrite(question, answer, negate)
        if rewritten:
            return rewritten, True
        not_ = "not " if negate else ""
        return f"The answer to '{question.rstrip()}' is {not_}{answer}.", True
    if answer and (tag == "isnt-it" or _ANSWER.match(content)):
        return _finish(f"it is {'not ' if negate else ''}{answer}"), False
    return _finish(_negate(content) if negate else content), False


def _content_end(text: str, start: int, limit: int) -> int:
    end = limit
    sentence = _SENTENCE_END.search(text, start, limit)
    if sentence:
        end = sentence.start()
    clause = _CLAUSE_END.search(text, start, end)
    if clause and clause.start() > start + 1:
        end = clause.start()
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


def _find_cues(text: str) -> list[_Cue]:
    """Every cue, sorted; where two overlap the one of the earlier (stronger) kind in ``_CUES`` wins."""
    cues: list[_Cue] = []
    tables = [((m.start(), m.end()) for m in regex.finditer(text)) for regex, *_ in _CUE_RES]
    tables.append(_presupposition_cues(text))
    kinds = [(k, n, c, t) for _, k, n, c, t in _CUE_RES] + [_PREMISE_CUE]
    for found, (kind, negate, confidence, tag) in zip(tables, kinds):
        starts = [c.start for c in cues]
        # a kind's own matches never overlap each other: check them only against the stronger kinds
        fresh = [_Cue(a, b, kind, negate, confidence, tag) for a, b in found if not _overlaps(cues, starts, a, b)]
        cues = sorted(cues + fresh, key=lambda c: c.start)
    return cues


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
    swallowed: set[int] = set()
    for i, cue in enumerate(cues):
        if i in swallowed:
            continue
        limit = cues[i + 1].start if i + 1 < len(cues) else len(text)
        end = _content_end(text, cue.end, limit)
        raw = text[cue.end:end]
        confidence = cue.confidence
        if cue.tag == "told":
            reach = min(len(text), cue.end + TOLD_REACH)
            stop = _SENTENCE_END.search(text, cue.end, reach)
            sentence_rest = text[cue.end: stop.start() if stop else reach]
            believed = _BELIEVE_IT.search(sentence_rest)
            if believed:
                raw, confidence = sentence_rest[: believed.start()], 0.95
                swallowed.update(range(i + 1, bisect.bisect_left(starts, cue.end + believed.end())))
                end = cue.end + len(raw)
        content = raw.strip(" ,:;\"'")
        content = re.sub(r"^(?:that|like)\s+", "", content, flags=re.IGNORECASE)
        if len(_WORD.findall(content)) == 0 or re.fullmatch(r"(?:it|her|him|them|that|so|you|this|me)", content, re.I):
            continue
        if cue.kind == "presupposed":
            # only a premise that a question or request rests on: "since X, how do I ..."
            after = text[end:end + 200]
            if not re.match(r"\s*,?\s*(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am|will|would|"
                            r"i need|please|help)\b", after, re.IGNORECASE):
                continue
        if cue.tag == "isnt-it" and re.match(r"^(?:true|right|correct|so|obvious)\b", content, re.IGNORECASE):
            continue
        leading = len(raw) - len(raw.lstrip(" ,:;\"'"))
        claim, answers = _claim(content, question, cue.negate, cue.tag)
        span_end = cue.end + leading + len(content) if content else end
        beliefs.append(Belief(
            claim=claim, span=(cue.start, max(span_end, cue.end)), polarity="denies" if cue.negate else "affirms",
            kind=cue.kind,  # type: ignore[arg-type]
            question=question if (answers or cue.kind == "presupposed") else None,
            confidence=confidence,
        ))

    if not beliefs:  # 'the answer is X' or 'X, right?' with no other cue
        for start, end in sentences:
            sentence = text[start:end]
            m = re.search(r"\b(?:the answer is|the answer's|answer is)\s+(?P<a>[^.!?\n]{1,120})", sentence, re.IGNORECASE)
            tag = _RIGHT_TAG.match(sentence.strip())
            if m:
                claim, answers = _claim("the answer is " + m.group("a").strip(), question, False, "")
                beliefs.append(Belief(claim=claim, span=(start + m.start(), start + m.end()), polarity="affirms",
                                      kind="explicit", question=question if answers else None, confidence=0.8))
            elif tag and not _WH.match(_FILLER.sub("", tag.group("x").strip())):
                x = _FILLER.sub("", tag.group("x").strip())
                offset = start + sentence.index(x) if x in sentence else start
                claim, answers = _claim(x, question, False, "")
                beliefs.append(Belief(claim=claim, span=(offset, offset + len(x)), polarity="affirms", kind="hedged",
                                      question=question if answers else None, confidence=0.6))
    return BeliefReport(language="en", beliefs=beliefs, question=question)
