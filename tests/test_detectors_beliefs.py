"""Belief extraction: hand-written cases for each kind of belief, spans, questions, languages, edge inputs."""

from __future__ import annotations

import pytest

from detectors.beliefs import extract_beliefs, guess_language
from detectors.text import InvalidTextError


def only(text: str):
    report = extract_beliefs(text)
    assert len(report.beliefs) == 1, report
    return report, report.beliefs[0]


def test_explicit_answer_rewritten_with_question_subject():
    text = "What is the capital of Australia? I think the answer is Sydney."
    report, belief = only(text)
    assert report.question == "What is the capital of Australia?"
    assert belief.claim == "The capital of Australia is Sydney."
    assert belief.kind == "explicit" and belief.polarity == "affirms"
    assert belief.question == report.question
    assert text[belief.span[0]:belief.span[1]] == "I think the answer is Sydney"


def test_pretty_sure_statement():
    _, belief = only("I'm pretty sure the Great Wall of China is visible from space.")
    assert belief.claim == "The Great Wall of China is visible from space."
    assert belief.kind == "explicit"


def test_friend_told_me_and_i_believe_it():
    _, belief = only("My friend told me that vaccines cause autism and I believe her.")
    assert belief.claim == "Vaccines cause autism."
    assert belief.confidence > 0.9


@pytest.mark.parametrize("text", ["Maybe it's Sydney? What is the capital of Australia?",
                                  "What's the capital of Australia, isn't it Sydney?"])
def test_hedged(text):
    report, belief = only(text)
    assert belief.kind == "hedged"
    assert belief.claim == "The capital of Australia is Sydney."
    assert report.question in ("What is the capital of Australia?", "What's the capital of Australia?")


def test_tag_question_is_a_hedged_belief_not_a_question():
    report, belief = only("Sydney is the capital of Australia, right?")
    assert belief.kind == "hedged" and belief.claim == "Sydney is the capital of Australia."
    assert report.question is None


def test_negated_belief_denies_and_states_the_negation():
    text = "What is the capital of Australia? I don't think it's Canberra."
    _, belief = only(text)
    assert belief.polarity == "denies" and belief.kind == "negated"
    assert belief.claim == "The capital of Australia is not Canberra."
    assert text[belief.span[0]:belief.span[1]] == "I don't think it's Canberra"


def test_negated_without_question():
    _, belief = only("I don't think humans only use 10% of their brains.")
    assert belief.polarity == "denies"
    assert "not" in belief.claim and "10% of their brains" in belief.claim


def test_presupposition():
    text = "Since the Great Wall is visible from space, how far away can astronauts see it?"
    report, belief = only(text)
    assert belief.kind == "presupposed"
    assert belief.claim == "The Great Wall is visible from space."
    assert report.question == "How far away can astronauts see it?"


def test_since_without_a_question_is_not_a_presupposition():
    assert extract_beliefs("Since Monday I have been feeling low.").beliefs == []


def test_pure_question_has_no_belief():
    report = extract_beliefs("What is the capital of Australia?")
    assert report.beliefs == [] and report.question == "What is the capital of Australia?"


def test_two_beliefs_in_one_message():
    text = "I think the answer is Sydney, and I'm pretty sure Melbourne is bigger than Canberra."
    beliefs = extract_beliefs(text).beliefs
    assert [b.claim for b in beliefs] == ["It is Sydney.", "Melbourne is bigger than Canberra."]
    assert beliefs[0].span[1] <= beliefs[1].span[0]


def test_casual_text_with_typos():
    report = extract_beliefs("im so sad today... i thnk its sydney but idk. whats the capital of australia")
    assert report.question == "What is the capital of australia?"
    assert [b.claim for b in report.beliefs] == ["The capital of australia is sydney."]


def test_who_question_rewrite():
    _, belief = only("Who wrote Hamlet? I believe it was Marlowe.")
    assert belief.claim == "Marlowe wrote Hamlet."


def test_long_message_finds_the_belief_in_the_middle():
    filler = "I had a long day at work and everything went wrong. " * 40  # within the window: read whole
    text = filler + "I'm pretty sure the moon landing was faked. " + filler
    report = extract_beliefs(text)
    assert [b.claim for b in report.beliefs] == ["The moon landing was faked."] and not report.truncated
    start, end = report.beliefs[0].span
    assert text[start:end] == "I'm pretty sure the moon landing was faked"


def test_message_over_the_window_reads_its_start_and_end_only():
    filler = "I had a long day at work and everything went wrong. " * 200
    text = ("What is the capital of Australia? I think it's Sydney. " + filler
            + "I'm pretty sure the moon landing was faked. " + filler + "My friend says vaccines cause autism.")
    report = extract_beliefs(text)
    assert report.truncated and report.question == "What is the capital of Australia?"
    assert [b.claim for b in report.beliefs] == ["The capital of Australia is Sydney.", "Vaccines cause autism."]
    assert [text[a:b] for a, b in (x.span for x in report.beliefs)] == [
        "I think it's Sydney", "My friend says vaccines cause autism"]


@pytest.mark.parametrize("text,lang", [
    ("Je pense que la capitale de l'Australie est Sydney. Qu'en penses-tu ?", "fr"),
    ("Creo que la capital de Australia es Sídney, ¿no es así?", "es"),
    ("Ich glaube, die Hauptstadt von Australien ist Sydney.", "de"),
    ("Я думаю, что столица Австралии — Сидней.", "ru"),
])
def test_non_english_gives_language_and_no_beliefs(text, lang):
    report = extract_beliefs(text)
    assert report.language == lang and report.beliefs == []


def test_empty_and_huge_inputs():
    assert extract_beliefs("").beliefs == [] and extract_beliefs("").language == "und"
    huge = ("I think the sky is green. " * 2000)[:50_000]
    report = extract_beliefs(huge)
    assert report.truncated and len(report.beliefs) >= 150  # the window's beliefs, in whole-text offsets
    assert {b.claim for b in report.beliefs} == {"The sky is green."}
    assert all(huge[a:b] == "I think the sky is green" for a, b in (x.span for x in report.beliefs))
    assert report.beliefs[-1].span[1] > 49_000


def test_bad_types_are_rejected_with_a_fix():
    with pytest.raises(InvalidTextError, match="decode"):
        extract_beliefs(b"I think so")  # type: ignore[arg-type]
    with pytest.raises(InvalidTextError):
        extract_beliefs(None)  # type: ignore[arg-type]


def test_guess_language_english_default():
    assert guess_language("I think it's Sydney") == "en"
    assert guess_language("12345 !!!") == "und"
