"""Hostile input to the text detectors (issue 11): linear patterns that match as before, bounded windows.

The rewritten patterns are checked against the originals (kept here verbatim) on generated short texts
built from the characters and words the patterns care about, so "linear" never changes what matches.
Speed is measured by ``benchmarks/adversarial_bench.py``, never asserted here.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors import beliefs, text as text_mod
from detectors.beliefs import extract_beliefs
from detectors.text import sentence_spans, window

# --- the original (quadratic) patterns, for the differential checks ---
OLD_SENTENCE_BREAK = re.compile(r"[.!?]+(?=\s|$)|\n+")
OLD_PREMISE = re.compile(r"(?:^|(?<=[.!?\n]\s)|(?<=[.!?\n]))\s*(?:since|given that|now that|considering that|seeing as)\b",
                         re.IGNORECASE)
# the original pattern, with the word boundary it lacked ("butter" is not "but")
OLD_CLAUSE_END = re.compile(
    r",?\s+(?:but|so|though|although|and i|and my|and that'?s|which is why|because|cuz|lol|haha)\b|,\s*and\b\b|"
    r"\s+-+\s|,\s*(?:right|is that (?:right|true|correct)|isn'?t it|no)\s*(?=[?.!]|$)|"
    r",\s*(?=(?:how|what|why|where|when|which|who|should|can|could|do|does|is|am|are|will|would)\b)",
    re.IGNORECASE,
)
OLD_BELIEVE_IT = re.compile(r",?\s*and (?:i|we) (?:believe|trust|think) (?:it|him|her|them|that)\b.*$", re.IGNORECASE)
OLD_RIGHT_TAG = re.compile(r"^(?P<x>[^?]{3,200}?),?\s*(?:right|correct|no|yeah|isn'?t it)\s*\?+\s*$", re.IGNORECASE)
OLD_HOW_MANY = re.compile(r"^how many\s+(.+?)\s+(?:are there|were there)\s*(.*)$", re.IGNORECASE)
OLD_CRISIS = re.compile(r"\bcan'?t (?:go on|do this) anymore\b.*\b(?:die|dead|life|living)\b", re.IGNORECASE)

# texts made of the pieces these patterns turn on: white space of every kind, sentence marks, commas, cue words
PIECES = [" ", "  ", "\n", "\t", "\r", "\u00a0", ".", "!", "?", ",", "-", "a", "x", "Since", "since ", "given that",
          "but", "so", "and i", "and I believe it", "right", "no", "how", "are there", "how many", "cats", "I think",
          "it's", "can't go on anymore", "die", "life", "I", "that", "'"]
texts = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spans(regex: re.Pattern[str], s: str) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(s)]


@SETTINGS
@given(texts)
def test_sentence_break_matches_as_before(s):
    assert spans(text_mod._SENTENCE_BREAK, s) == spans(OLD_SENTENCE_BREAK, s)


@SETTINGS
@given(texts)
def test_presupposition_cues_match_as_before(s):
    assert list(beliefs._presupposition_cues(s)) == spans(OLD_PREMISE, s)


@SETTINGS
@given(texts, st.integers(0, 30), st.integers(0, 30))
def test_clause_end_finds_the_same_first_end(s, a, b):
    pos, end = min(a, b, len(s)), min(max(a, b), len(s))
    new, old = beliefs._clause_end(s, pos, end), OLD_CLAUSE_END.search(s, pos, end)
    assert (new and new.start()) == (old and old.start())


@SETTINGS
@given(texts)
def test_believe_it_right_tag_and_how_many_match_as_before(s):
    for new, old in ((beliefs._BELIEVE_IT.search(s), OLD_BELIEVE_IT.search(s)),):
        assert (new and new.span()) == (old and old.span())
    new, old = beliefs._RIGHT_TAG.match(s), OLD_RIGHT_TAG.match(s)
    assert (new and new.group("x")) == (old and old.group("x"))
    q = "how many " + s
    new, old = beliefs._HOW_MANY.match(q), OLD_HOW_MANY.match(q)
    if old and not old.group(1).strip():
        return  # "how many   are there": the old pattern counted a blank; the new one does not match
    assert (new and new.groups()) == (old and old.groups())


@SETTINGS
@given(texts)
def test_crisis_pair_pattern_finds_the_same_lines(s):
    from detectors.emotion import _CuePattern

    pair = _CuePattern(r"\bcan'?t (?:go on|do this) anymore\b", r"\b(?:die|dead|life|living)\b")
    assert pair.search(s.lower()) == bool(OLD_CRISIS.search(s))


CRISIS_PIECES = ["I ", "want to die", "kill myself", "skill myself", "suicidal", "SUICIDE", "_suicide", "self-harm",
                 "end it all", "lol", "killing me", "can't go on anymore", " life", "\n", " ", ".", "é", "x", "K"]


@SETTINGS
@given(st.lists(st.sampled_from(CRISIS_PIECES), max_size=12).map("".join))
def test_crisis_patterns_hit_as_the_case_insensitive_originals(s):
    import json

    from detectors.emotion import CRISIS_FILE, CrisisScorer

    spec = json.loads(CRISIS_FILE.read_text())
    originals = [re.compile(p if isinstance(p, str) else f"{p['cue']}.*{p['then']}", re.IGNORECASE) for p in spec["patterns"]]
    scorer = CrisisScorer()
    assert [p.search(s.lower()) for p in scorer.patterns] == [bool(p.search(s)) for p in originals]


def test_the_shipped_crisis_file_uses_the_pair_form():
    from detectors.emotion import CrisisScorer

    scorer = CrisisScorer()
    assert scorer.pattern_hit("I can't go on anymore, I want my life to end")
    assert not scorer.pattern_hit("I can't go on anymore\nwith this job, it's my life")
    assert not scorer.pattern_hit("can't go on anymore " * 3000)
    assert scorer.pattern_hit("can't go on anymore " * 3000 + "I want to die")


# --- the measured adversarial inputs still give the right answers ---

def test_adversarial_inputs_keep_their_beliefs_and_spans():
    text = "I think" + " " * 8_000 + "it's Sydney. What is the capital of Australia?"
    whole = beliefs._extract(text)  # the patterns on all of it (extract_beliefs would read a window)
    assert whole.question == "What is the capital of Australia?"
    (belief,) = whole.beliefs
    assert belief.claim == "The capital of Australia is Sydney." and belief.span == (0, len(text) - 35)
    report = extract_beliefs(text)  # the window: the cue's content lies in the unread middle
    assert report.truncated and report.question == "What is the capital of Australia?" and report.beliefs == []

    assert extract_beliefs("\n" * 8_000 + "Since the sun is cold, how do I stay warm?").beliefs[0].kind == "presupposed"
    assert extract_beliefs("!" * 16_000 + "a").beliefs == []
    assert sentence_spans("!" * 16_000 + "a") == [(0, 16_001)]
    assert sentence_spans("Hi!!! " * 3 + "!" * 10 + "a") == [(0, 5), (5, 11), (11, 17), (17, 29)]


def test_a_belief_after_a_long_blank_run_is_read_like_a_short_one():
    short = extract_beliefs("I think the moon is made of cheese.")
    padded = extract_beliefs(" " * 20_000 + "I think the moon is made of cheese.")
    assert [b.claim for b in padded.beliefs] == [b.claim for b in short.beliefs] == ["The moon is made of cheese."]
    assert padded.beliefs[0].span == (20_000, 20_000 + len("I think the moon is made of cheese"))


def test_many_told_cues_are_each_read():
    text = "My friend told me that the earth is flat and I believe her. " * 40
    found = extract_beliefs(text).beliefs
    assert len(found) == 40 and {b.claim for b in found} == {"The earth is flat."}
    assert all(b.confidence > 0.9 for b in found)


# --- windows ---

def test_window_keeps_short_text_whole_and_maps_long_text_back():
    assert window("short text.", 10, 10).truncated is False
    text = "First sentence here. " * 50 + "Last one!"
    view = window(text, 100, 50)
    assert view.truncated and len(view.text) <= 151 + 1
    assert view.text.startswith("First sentence here.") and view.text.endswith("Last one!")
    for i in range(len(view.text)):
        j = view.to_original(i)
        if view.text[i] != "\n" or i != view.head_end:
            assert text[j] == view.text[i]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(0, 120), st.integers(0, 120))
def test_window_spans_stay_inside_the_text(s, head, tail):
    view = window(s, head, tail)
    for a in range(0, len(view.text) + 1, 7):
        start, end = view.span_to_original(a, min(len(view.text), a + 11))
        assert 0 <= start <= end <= len(s)


# --- spans are always inside the text, for any text ---

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400) | texts)
def test_sentence_spans_and_belief_spans_lie_inside_the_text(s):
    clean = text_mod.normalise(s)
    previous_end = 0
    for start, end in sentence_spans(clean):
        assert previous_end <= start < end <= len(clean) and clean[start:end].strip()
        previous_end = end
    for belief in extract_beliefs(s).beliefs:
        assert 0 <= belief.span[0] <= belief.span[1] <= len(clean)


@settings(max_examples=50, deadline=None)
@given(texts, st.sampled_from([" ", "\n", "I think it's so, ", "! ", "my friend says "]), st.text(max_size=200) | texts)
def test_belief_spans_of_windowed_texts_lie_inside_the_text(head, filler, tail):
    s = head + filler * (6_000 // len(filler)) + tail
    report = extract_beliefs(s)
    assert report.truncated
    for belief in report.beliefs:
        assert 0 <= belief.span[0] <= belief.span[1] <= len(s)
