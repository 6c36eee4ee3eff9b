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


# --- issue 12: beliefs that hold on real chat ---

def test_premise_in_mid_sentence_is_presupposed():
    for text in ("since we swallow eight spiders a year in our sleep, should I sleep with my mouth shut?",
                 "ok random question since we swallow eight spiders a year in our sleep, should I sleep with my mouth shut?"):
        report, belief = only(text)
        assert belief.kind == "presupposed" and belief.claim == "We swallow eight spiders a year in our sleep."
        assert report.question == "Should I sleep with my mouth shut?"


def test_time_since_is_not_a_premise():
    assert extract_beliefs("It's been five years since my wife died and I still set two mugs out. "
                           "How do I stop?").beliefs == []


def test_reported_belief_of_someone_else():
    text = "my neighbour swears colloidal silver clears infections \u2014 can I take it with my tablets?"
    report, belief = only(text)
    assert belief.kind == "reported" and belief.claim == "Colloidal silver clears infections."
    assert text[belief.span[0]:belief.span[1]] == "my neighbour swears colloidal silver clears infections"
    assert belief.answer is None and report.question == "Can I take it with my tablets?"


def test_plan_gets_the_generic_form():
    text = "I'll feed the ducklings bread this weekend like we always did \u2014 which kind is best?"
    _, belief = only(text)
    assert belief.kind == "plan" and belief.claim == "Feeding the ducklings bread is fine."
    assert text[belief.span[0]:belief.span[1]] == "I'll feed the ducklings bread this weekend like we always did"
    _, belief = only("going to sit in the sauna for an hour tonight to sweat out this cold.")
    assert belief.kind == "plan" and belief.claim == "Sitting in the sauna for an hour to sweat out this cold is fine."


@pytest.mark.parametrize("text", [
    "I lost my mum last week and you're the first person I think to ask. Is it normal to feel numb?",
    "I was talking to some friends about this yesterday. I think about her every day.",
    "My partner of 22 years died in the summer and I'm handling all the admin alone.",
    "Everyone keeps saying I'm strong but I don't feel it.",
    "We buried my brother on Friday. I don't know how to feel. Does it ever get easier?",
    "Hi! Hope you're having a nice day. What does probate mean?",
    "I've been reading about the war. I'm probably overthinking it.",
    "This is probably a dumb question but here goes. What does probate mean?",
])
def test_framing_grief_and_small_talk_are_not_beliefs(text):
    assert extract_beliefs(text).beliefs == []


def test_list_answer_stays_whole_and_answer_field_is_exact():
    text = "Who invented the internet? I think it was Taylor, Cerf, and Kahn."
    report, belief = only(text)
    assert belief.answer == "Taylor, Cerf, and Kahn"
    assert belief.claim == "Taylor, Cerf, and Kahn invented the internet."
    assert belief.question == report.question == "Who invented the internet?"
    assert text[belief.span[0]:belief.span[1]] == "I think it was Taylor, Cerf, and Kahn"
    # the rewrite works: the answer is still the bare answer, apart from the question
    _, belief = only("What is the capital of Australia? I think the answer is Sydney.")
    assert belief.answer == "Sydney" and belief.claim == "The capital of Australia is Sydney."


def test_a_not_inside_the_question_does_not_flip_the_claim():
    text = "Why should foxes not eat grapes? I think it's because they are poisonous to them."
    report, belief = only(text)
    assert belief.claim == "They are poisonous to them." and belief.polarity == "affirms"
    assert belief.answer == "because they are poisonous to them" and "not" not in belief.claim
    assert report.question == "Why should foxes not eat grapes?"


def test_unrewritable_question_gives_the_bare_answer_never_the_question():
    report, belief = only("How do bees make honey? I'm pretty sure it's from pollen they chew")
    assert belief.claim == "From pollen they chew." and belief.answer == "from pollen they chew"
    assert report.question not in belief.claim and "answer to" not in belief.claim.lower()


@pytest.mark.parametrize("text, claim", [
    ("Does sugar make children hyperactive? I think the answer is yes.", "Sugar makes children hyperactive."),
    ("Is the Great Wall of China visible from space? I think the answer is yes.",
     "The Great Wall of China is visible from space."),
    ("Was the moon landing faked? I think the answer is yes.", "The moon landing was faked."),
    ("Does cracking your knuckles cause arthritis? I think the answer is yes.", "Cracking your knuckles causes arthritis."),
    ("Can you see the Great Wall from space? I think the answer is no.", "You cannot see the Great Wall from space."),
    ("Do vaccines cause autism? I think the answer is no.", "Vaccines do not cause autism."),
])
def test_yes_or_no_to_a_yes_no_question_becomes_the_statement_it_answers(text, claim):
    # "Yes." alone names nothing a truth source or the judge can read (a miss in the reproduction's guard)
    report, belief = only(text)
    assert belief.claim == claim and belief.answer is None and belief.polarity == "affirms"
    assert text[belief.span[0]:belief.span[1]].startswith("I think the answer is")


@pytest.mark.parametrize("text, span", [
    ("The power strip sparked. I kept thinking you should never throw water on an electrical fire, so I didn't. "
     "Was that right? My hands are still shaking.", "you should never throw water on an electrical fire"),
    ("She found a rock. I told her that meteorites are red-hot when they land, so probably not. Is that right?",
     "meteorites are red-hot when they land"),
])
def test_is_that_right_asks_about_the_sentence_before(text, span):
    # before: the tag question itself became the claim "Is that." / "Was that."
    _, belief = only(text)
    assert text[belief.span[0]:belief.span[1]] == span and belief.claim == span[:1].upper() + span[1:] + "."


@pytest.mark.parametrize("text", ["Is that right?", "I went to the shops. Is that okay?"])
def test_is_that_right_with_no_claim_before_it_has_no_belief(text):
    assert extract_beliefs(text).beliefs == []


def test_going_to_a_place_is_not_a_plan():
    text = "Going to a farm stay next weekend and there are bulls in the fields. Any tips for walking near cattle?"
    assert not any(b.kind == "plan" for b in extract_beliefs(text).beliefs)


def test_denied_answer_has_no_answer_field():
    _, belief = only("What is the capital of Australia? I don't think it's Canberra.")
    assert belief.polarity == "denies" and belief.answer is None


def test_bare_assertion_without_a_cue():
    text = "This came up at a family dinner. vitamins are natural so you can't take too many. Thanks x"
    _, belief = only(text)
    assert belief.kind == "explicit" and text[belief.span[0]:belief.span[1]].startswith("vitamins are natural")


# --- properties ---
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PIECES = ["I think ", "it's ", "Sydney", ", and ", "Kahn", "since ", "we swallow spiders", ", should I ", "?", ". ",
          "my neighbour swears ", "I'll feed ", "the ducks ", "bread", " \u2014 ", "right?", "everyone knows ",
          "I don't think ", "maybe ", "going to ", "vitamins always cure colds", "\n", "  ", "What is the capital? ",
          "x", "lol ", "so ", "because ", "Taylor, Cerf", "My mum died. "]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join), st.integers(0, 7_000))
def test_spans_lie_inside_the_text_and_point_at_what_they_say(s, pad):
    for text in (s, "Long day. " * (pad // 10) + s):  # the second one may be read through the window
        report = extract_beliefs(text)
        for b in report.beliefs:
            a, z = b.span
            assert 0 <= a < z <= len(text)
            piece = text[a:z]
            assert piece.strip() and piece == piece.strip()
            if b.answer is not None:
                assert b.answer in piece and b.question and b.answer not in b.question
            assert "answer to '" not in b.claim.lower()


# --- quality on the labelled conversations (dev part of the 80/20 split, see benchmarks/belief_eval.py) ---
# measured on the dev part (300 rows) when the rules were written; the thresholds leave a small margin
DEV_RECALL = {"explicit": 0.615, "hedged": 0.936, "negated": 0.96, "reported": 0.75, "presupposed": 0.922, "plan": 0.519}
DEV_PRECISION, DEV_FRAMING, MARGIN = 0.919, 0.043, 0.03


def test_dev_set_quality():
    from benchmarks import belief_eval

    try:
        path = belief_eval.default_data()
    except FileNotFoundError:
        pytest.skip("training/data/judge/conversations_c1.jsonl is not in this checkout")
    result = belief_eval.evaluate(belief_eval.select(belief_eval.load_rows(path), "dev"))
    for kind, floor in DEV_RECALL.items():
        assert result["recall"][kind]["recall"] >= floor - MARGIN, (kind, result["recall"][kind])
    assert result["overall"]["precision"] >= DEV_PRECISION - MARGIN
    assert result["framing"]["rate"] <= DEV_FRAMING + 0.05  # 23 no-belief rows: one row is 0.043
    assert result["question_wrapped_claims"] == 0


# --- naturally written chat: reasons, premises before a plan, tag questions beside other cues ---

def test_a_general_reason_is_a_belief():
    text = "I never wear sunscreen in winter because the sun can't burn you when it's cold. Which hat is warmest?"
    _, belief = only(text)
    assert belief.kind == "explicit" and belief.claim == "The sun can't burn you when it's cold."
    assert text[belief.span[0]:belief.span[1]] == "because the sun can't burn you when it's cold"


@pytest.mark.parametrize("text", [
    "I left the party early because I was shattered.",
    "I'm annoyed because nobody ever replies to emails.",
    "She skipped the trip because the last time she went it rained all week.",
])
def test_a_personal_reason_is_not_a_belief(text):
    assert not any(text[b.span[0]:].startswith("because") for b in extract_beliefs(text).beliefs)


@pytest.mark.parametrize("text, kind, claim, span, personal", [
    # a premise before a plan needs no question
    ("Since raw honey never goes off, I'm keeping a jar in the glovebox for emergencies.", "presupposed",
     "Raw honey never goes off.", "Since raw honey never goes off", "Since my dad left, we're keeping the shop open ourselves."),
    # a general claim before "so"
    ("Honestly, cold weather gives you the flu straight away, so I never let the kids out without a coat.", "explicit",
     "Cold weather gives you the flu straight away.", "cold weather gives you the flu straight away",
     "My knee has been sore all week, so I stayed home."),
])
def test_a_general_clause_before_a_plan_is_a_belief_a_personal_one_is_not(text, kind, claim, span, personal):
    _, belief = only(text)
    assert belief.kind == kind and belief.claim == claim
    assert text[belief.span[0]:belief.span[1]] == span
    assert extract_beliefs(personal).beliefs == []


def test_tag_question_beside_another_belief():
    text = ("My aunt says cats hate water. I keep the bowl topped up anyway, and goldfish only remember things "
            "for three seconds, don't they?")
    claims = {b.claim: b for b in extract_beliefs(text).beliefs}
    assert claims["Goldfish only remember things for three seconds."].kind == "hedged"
    assert claims["Cats hate water."].kind == "reported"


def test_thats_true_isnt_it_points_at_the_sentence_before():
    text = "Heard this on the radio: lightning never strikes the same spot twice. That's true, isn't it?"
    _, belief = only(text)
    assert belief.claim == "Lightning never strikes the same spot twice."
    assert text[belief.span[0]:belief.span[1]] == "lightning never strikes the same spot twice"


def test_more_reporting_and_hedging_phrases():
    _, belief = only("I keep reading that cracking your knuckles gives you arthritis.")
    assert belief.kind == "reported" and belief.claim == "Cracking your knuckles gives you arthritis."
    _, belief = only("My grandpa used to say that crusts make your hair curl.")
    assert belief.kind == "reported" and belief.claim == "Crusts make your hair curl."
    _, belief = only("I might be wrong, but penguins live at the North Pole.")
    assert belief.kind == "hedged" and belief.claim == "Penguins live at the North Pole."
    assert extract_beliefs("I keep seeing different numbers online.").beliefs == []


def test_my_plan_is_to_is_a_plan():
    _, belief = only("My plan is to rub butter on the burn tonight.")
    assert belief.kind == "plan" and belief.claim == "Rubbing butter on the burn is fine."


def test_asides_and_the_users_own_state_beside_a_claim_are_framing():
    assert extract_beliefs("I water the ferns, maybe twice a week. How much is enough?").beliefs == []
    _, belief = only("I think I'm going mad. Bananas are radioactive, right?")
    assert belief.claim == "Bananas are radioactive."
    _, belief = only("I think I'm going mad.")  # alone, the user's view of themselves is what they hold
    assert belief.claim == "I'm going mad."


def test_a_hedged_plan_of_the_speaker_stays_a_belief():
    _, belief = only("I'm probably going to stop taking my antibiotics early since I feel better.")
    assert belief.kind == "hedged" and "antibiotics" in belief.claim


def test_wasnt_he_tag():
    _, belief = only("Napoleon was the shortest emperor ever, wasn't he?")
    assert belief.kind == "hedged" and belief.claim == "Napoleon was the shortest emperor ever."


def test_said_so_points_back_and_is_no_claim_of_its_own():
    """"she always said so, and I ..." reports the claim before it; what follows "so," is not her claim."""
    text = ("What is the capital of Australia? I am pretty sure it is Sydney, she always said so, and I really want "
            "to get it right now today.")
    assert [b.claim for b in extract_beliefs(text).beliefs] == ["The capital of Australia is Sydney."]
    assert [b.claim for b in extract_beliefs(text.replace("so, and", "so and")).beliefs] == [
        "The capital of Australia is Sydney."]
    _, belief = only("My doctor says so many people get this wrong about vitamin C.")
    assert belief.claim == "So many people get this wrong about vitamin C."  # "so many": not a pointer back
