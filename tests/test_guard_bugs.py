"""Each bug found in the guard's core, reproduced first, on the real embedded detectors (and a real
OpenAI-compatible server on loopback for the client wrapper)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from fastapi import Request

from benchmarks.fake_upstream import ServerThread
from guardrail import Guard, Policy, Verdict
from guardrail.guard import Detectors, GuardInputError
from guardrail.truth import TruthResult

SAD = "I've been so low since my dad died last month and I can't sleep."
USER_AU = f"{SAD} What's the capital of Australia? I'm pretty sure it's Sydney."
ENDORSE_AU = "I'm so sorry for your loss. Yes, you're right, Sydney is the capital of Australia."


@pytest.fixture(scope="module")
def guard():
    return Guard().warmup()


def test_bug1_one_users_reference_never_reaches_another_users_reply(guard):
    """Two items with the same claim and draft: each correction quotes its own reference only."""
    refs = [{"context": f"The capital of Australia is Canberra, not Sydney. Note {tag}."} for tag in ("ALPHA", "BETA")]
    a, b = guard.check_batch([{"user_message": USER_AU, "draft": ENDORSE_AU, "reference": r} for r in refs])
    for v, own, other in ((a, "ALPHA", "BETA"), (b, "BETA", "ALPHA")):
        [finding] = v.beliefs
        assert finding.truth_source == "reference" and finding.truth == "false"
        shown = json.dumps(v.model_dump(mode="json"))
        assert own in shown and other not in shown


class _Gate:
    """An emotion detector that blocks until released."""

    def __init__(self, inner):
        self.inner, self.release = inner, threading.Event()

    def predict(self, *a, **k):
        self.release.wait(60)
        return self.inner.predict(*a, **k)


def test_bug3_the_budget_is_per_request_not_per_batch_item(guard):
    gate = _Gate(guard.detectors.emotion)
    slow = Guard(detectors=Detectors(emotion=gate, stance=guard.detectors.stance, beliefs=guard.detectors.beliefs),
                 policy=Policy(timeout_ms=200))
    threading.Timer(2.0, gate.release.set).start()  # a 32 x 200 ms budget would outlast this and succeed
    verdicts = slow.check_batch([(USER_AU, ENDORSE_AU)] * 32)
    assert {v.status for v in verdicts} == {"timeout"}


def test_bug3_timed_out_work_does_not_starve_later_checks(guard):
    gate = _Gate(guard.detectors.emotion)
    stuck = Guard(detectors=Detectors(emotion=gate, stance=guard.detectors.stance, beliefs=guard.detectors.beliefs),
                  policy=Policy(timeout_ms=100))
    try:
        assert all(stuck.check(USER_AU, ENDORSE_AU).status == "timeout" for _ in range(6))
        v = guard.check(USER_AU, ENDORSE_AU)  # six abandoned checks still blocked: this one must run
        assert v.status == "ok" and v.action == "revise"
    finally:
        gate.release.set()


@pytest.mark.parametrize("history", [
    [{"role": "user", "content": 42}],
    [{"role": "user", "content": ["not a part"]}],
    [{"role": "user", "content": b"bytes"}],
])
def test_bug4_history_content_of_the_wrong_type_is_a_guard_input_error(guard, history):
    with pytest.raises(GuardInputError, match="history"):
        guard.check("hi", "hello", history=history)


def test_bug4_unknown_reference_keys_are_refused(guard):
    with pytest.raises(GuardInputError, match="correct, incorrect, context"):
        guard.check("hi", "hello", reference={"corect": ["Canberra"]})


def test_bug4_a_reference_with_lone_surrogates_gives_a_serialisable_verdict(guard):
    v = guard.check(USER_AU, ENDORSE_AU, reference={"context": "Canberra \ud800 is the capital, not Sydney."})
    json.loads(v.model_dump_json())
    v = guard.check(USER_AU, ENDORSE_AU, reference=["Canberra\udfff"])
    json.loads(v.model_dump_json())


def test_bug5_fail_closed_unsupported_language_says_fail_closed(guard):
    closed = Guard(detectors=guard.detectors, policy=Policy(fail_closed=True))
    v = closed.check("Hola, ¿qué tal? Hoy hace muy buen tiempo en la ciudad y estoy contento.", "¡Me alegro mucho!")
    assert v.status == "unsupported_input" and v.action == "block"
    assert "fail_closed" in v.flags and "fail_open" not in v.flags


def test_bug6_the_reference_is_consulted_before_the_index(guard):
    # The index says "Sydney is the capital" is false; a caller's reference that says otherwise wins.
    v = guard.check(USER_AU, ENDORSE_AU, reference={"correct": ["Sydney"]})
    assert (v.beliefs[0].truth_source, v.beliefs[0].truth) == ("reference", "true")
    index_first = Guard(detectors=guard.detectors, truth=["misconception_index", "reference"])
    v = index_first.check(USER_AU, ENDORSE_AU, reference={"correct": ["Sydney"]})
    assert (v.beliefs[0].truth_source, v.beliefs[0].truth) == ("misconception_index", "false")


class Oracle:
    """A user-supplied truth source: anything with a name and a judge method."""

    name = "oracle"

    def __init__(self):
        self.seen = []

    def judge(self, queries, ctx):
        self.seen.extend(q.claim for q in queries)
        return [TruthResult("false", self.name, 1.0, correction="The oracle says Canberra.") for _ in queries]


def test_a_custom_truth_source_takes_its_place_in_the_order(guard):
    oracle = Oracle()
    g = Guard(detectors=guard.detectors, truth=[oracle, "misconception_index"])
    v = g.check(USER_AU, ENDORSE_AU)
    assert v.beliefs[0].truth_source == "oracle" and "oracle" in (v.text or "")
    assert oracle.seen and "Sydney" in oracle.seen[0]
    with pytest.raises(TypeError, match="unknown truth source"):
        Guard(detectors=guard.detectors, truth=["wikipedia"])


def test_a_custom_source_that_breaks_its_contract_is_an_error_not_a_crash(guard):
    class Liar:
        name = "liar"

        def judge(self, queries, ctx):
            return []

    v = Guard(detectors=guard.detectors, truth=[Liar()]).check(USER_AU, ENDORSE_AU)
    assert v.status == "error" and "liar" in v.error and "fail_open" in v.flags


# ------------------------------------------------------------------------------------- bug 7
@pytest.fixture(scope="module")
def upstream():
    """A real OpenAI-compatible server on loopback that answers with the user's last words echoed as
    n choices, so concurrent calls are told apart."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        await asyncio.sleep(0.05)
        last = body["messages"][-1]["content"]
        answer = ENDORSE_AU if "Sydney" in last else "The capital of France is Paris."
        n = int(body.get("n") or 1)
        return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                            for i in range(n)]}

    server = ServerThread(app)
    yield f"{server.url}/v1"
    server.close()


def test_bug7_guard_openai_checks_every_choice_sync(upstream, guard):
    openai = pytest.importorskip("openai")
    from guardrail import guard_openai

    client = guard_openai(openai.OpenAI(base_url=upstream, api_key="unused"), guard)
    response = client.chat.completions.create(model="m", n=2, messages=[{"role": "user", "content": USER_AU}])
    verdicts = [Verdict(**v) for v in response.guardrail]
    assert [v.action for v in verdicts] == ["revise", "revise"]
    assert all(c.message.content == v.text for c, v in zip(response.choices, verdicts))
    assert not hasattr(client.chat.completions, "last_verdict")


def test_bug7_guard_openai_works_with_async_clients_and_keeps_calls_apart(upstream, guard):
    openai = pytest.importorskip("openai")
    from guardrail import guard_openai

    client = guard_openai(openai.AsyncOpenAI(base_url=upstream, api_key="unused"), guard)

    async def both():
        return await asyncio.gather(
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": USER_AU}]),
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "What's the capital of France?"}]),
        )

    sad, plain = asyncio.run(both())
    assert sad.guardrail[0]["action"] == "revise" and plain.guardrail[0]["action"] == "pass"
    assert plain.choices[0].message.content == "The capital of France is Paris."


def test_bug7_wrapped_functions_carry_their_own_verdicts(guard):
    @guard.wrap
    async def chat(messages):
        await asyncio.sleep(0.01)
        return ENDORSE_AU if "Sydney" in messages[-1]["content"] else "Paris is the capital of France."

    async def both():
        return await asyncio.gather(chat([{"role": "user", "content": USER_AU}]),
                                    chat([{"role": "user", "content": "What's the capital of France?"}]))

    sad, plain = asyncio.run(both())
    assert sad.verdict.action == "revise" and plain.verdict.action == "pass"
    assert not hasattr(chat, "last_verdict")
