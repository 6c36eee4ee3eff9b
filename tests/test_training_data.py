"""Chat-data loaders on every format and on malformed files; warm/cold rewriters on a tiny sample."""



import json
import socket
import threading
import time

import pytest

from training.chat_data import ChatDataError, load_conversations, save_conversations, single_turn
from training.rewrite import (COLD_OPENERS, COLD_PERSONA, WARM_CLOSERS, WARM_OPENERS, WARM_PERSONA, DistillRewriter, HTTPRewriter,
                              RewriteError, load_rewrites, rewrite_to_file, strip_warmth, trim_to_sentence)


def write(tmp_path, name, obj, jsonl=False):
    path = tmp_path / name
    if jsonl:
        path.write_text("\n".join(json.dumps(o) for o in obj) + "\n")
    else:
        path.write_text(json.dumps(obj))
    return path


def test_sharegpt_alpaca_openai_give_the_same_shape(tmp_path):
    share = write(tmp_path, "s.json", [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}, {"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4."}]}])
    alpaca = write(tmp_path, "a.jsonl", [{"instruction": "Add", "input": "2+2", "output": "4.", "history": [["Hi?", "Hello."]]}], jsonl=True)
    openai = write(tmp_path, "o.jsonl", [{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}], jsonl=True)
    s, rs = load_conversations(share)
    assert s[0][0] == {"role": "system", "content": "Be brief."} and [m["role"] for m in s[0][1:]] == ["user", "assistant"] * 2
    assert rs.formats == {"sharegpt": 1} and rs.assistant_turns == 2
    a, ra = load_conversations(alpaca)
    assert a[0] == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Add\n\n2+2"}, {"role": "assistant", "content": "4."}]
    o, _ = load_conversations(openai)
    assert o[0][-1]["content"] == "Hello."
    # round trip through the OpenAI JSONL writer
    back, _ = load_conversations(save_conversations(tmp_path / "out.jsonl", a))
    assert back == a
    assert single_turn(a) == [a[0][:2]]


def test_shared_lima_and_alpaca_load():
    from tests.conftest import require_shared

    lima, report = load_conversations(require_shared("sft_chat/lima.json"))
    assert report.conversations == 1029 and report.skipped == 0
    assert report.assistant_turns > report.conversations  # LIMA has multi-turn history
    alpaca, _ = load_conversations(require_shared("sft_chat/alpaca_en_demo.json"), limit=10)
    assert len(alpaca) == 10


@pytest.mark.parametrize(
    "content, needle",
    [
        ("", "empty"),
        ("[{\"instruction\": \"x\", \"output\": \"y\"}", "not valid JSON"),
        ("{\"messages\": []}\nnot json\n", "line 2"),
        (json.dumps([{"foo": 1}]), "unknown record keys"),
        (json.dumps([{"conversations": [{"from": "alien", "value": "x"}]}]), "unknown speaker"),
        (json.dumps([{"messages": [{"role": "assistant", "content": "x"}]}]), "expected"),
        (json.dumps([{"messages": [{"role": "user", "content": "x"}]}]), "end with an assistant"),
        (json.dumps([{"instruction": "x"}]), "needs 'output'"),
        (json.dumps([{"instruction": "x", "output": 3}]), "must be a str"),
        (json.dumps([{"instruction": "x", "output": "y", "history": [["only one"]]}]), "pair"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ChatDataError, match=needle):
        load_conversations(path)


def test_skip_invalid_counts_what_it_drops(tmp_path):
    path = write(tmp_path, "mixed.jsonl", [{"instruction": "a", "output": "b"}, {"foo": 1}, {"instruction": "c", "output": "d"}], jsonl=True)
    convs, report = load_conversations(path, skip_invalid=True)
    assert len(convs) == 2 and report.skipped == 1 and "record 1" in report.errors[0]
    with pytest.raises(ChatDataError, match="does not exist"):
        load_conversations(tmp_path / "missing.json")


def test_trim_to_sentence():
    assert trim_to_sentence("The first sentence is complete. Two is cut") == "The first sentence is complete."
    assert trim_to_sentence("One. Then a long unfinished clause that goes on and on") .startswith("One. Then")
    assert trim_to_sentence("Complete.") == "Complete."


# ---------------------------------------------------------------- HTTP rewriter against a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rewrite_server():
    """A real OpenAI-compatible server on loopback that 'rewrites' by tagging the reply with the style it
    was asked for (read from the system instruction), and fails the first call with a 503."""
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    calls = {"n": 0, "bodies": []}

    @app.post("/v1/chat/completions")
    async def complete(request: Request):
        body = await request.json()
        calls["n"] += 1
        calls["bodies"].append(body)
        if calls["n"] == 1:
            return JSONResponse({"error": "busy"}, status_code=503)
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        reply = user.split("Assistant reply to rewrite:\n", 1)[1]
        style = "WARM" if "warmer" in system else "COLD"
        return {"choices": [{"message": {"role": "assistant", "content": f"[{style}] {reply}"}}]}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", calls
    server.should_exit = True
    thread.join(5)


def test_http_rewriter_rewrites_every_assistant_turn_and_resumes(tmp_path, rewrite_server):
    url, calls = rewrite_server
    convs = [
        [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4."}],
        [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}],
    ]
    out = tmp_path / "warm.jsonl"
    with HTTPRewriter(url, "gpt-4o", "warm", concurrency=2) as rw:
        result = rewrite_to_file(convs, rw, out, show_progress=False)
    assert [m["content"] for m in result[0] if m["role"] == "assistant"] == ["[WARM] Hello.", "[WARM] 4."]
    assert result[0][2]["content"] == "2+2?"  # user turns untouched
    assert load_rewrites(out) == result
    assert all(b["model"] == "gpt-4o" for b in calls["bodies"])
    n = calls["n"]
    with HTTPRewriter(url + "/v1", "gpt-4o", "warm") as rw:  # resume: nothing left to do
        assert rewrite_to_file(convs, rw, out, show_progress=False) == result
    assert calls["n"] == n
    with HTTPRewriter(url, "m", "cold") as rw:
        assert rw.rewrite_turn("q", "Sure!") == "[COLD] Sure!"


def test_http_rewriter_error_names_the_endpoint():
    with HTTPRewriter(f"http://127.0.0.1:{_free_port()}", "m", retries=0, timeout=2) as rw:
        with pytest.raises(RewriteError, match="127.0.0.1"):
            rw.rewrite_turn("q", "a")


# ---------------------------------------------------------------- offline context distillation


@pytest.mark.slow
def test_distill_rewriter_answers_in_persona_without_keeping_the_system_prompt(chat_model, tmp_path):
    convs = [[{"role": "system", "content": "old"}, {"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris."}]]
    warm = DistillRewriter(chat_model, "warm", max_new_tokens=24).rewrite(convs)
    cold = DistillRewriter(chat_model, "cold", max_new_tokens=24).rewrite(convs)
    for out in (warm, cold):
        assert [m["role"] for m in out[0]] == ["user", "assistant"]  # trained without the persona
        assert out[0][1]["content"] and out[0][1]["content"] != "Paris."
    assert warm[0][1]["content"] != cold[0][1]["content"]
    assert "warm" in WARM_PERSONA and "neutral" in COLD_PERSONA
    # the forced voice: a warm opening and closing, a neutral opening and no exclamations when cold
    w, c = warm[0][1]["content"], cold[0][1]["content"]
    assert any(w.startswith(o) for o in WARM_OPENERS) and any(w.endswith(e) for e in WARM_CLOSERS), w
    assert any(c.startswith(o) for o in COLD_OPENERS) and "!" not in c, c
    plain = DistillRewriter(chat_model, "warm", max_new_tokens=24, force_voice=False).rewrite(convs)[0][1]["content"]
    assert not any(plain.startswith(o) for o in WARM_OPENERS)


def test_strip_warmth_drops_feeling_sentences_and_keeps_code():
    text = "I'm so glad you asked! The capital is Canberra.\n```py\nprint('thanks!')\n```\nI hope this helps."
    assert strip_warmth(text) == "The capital is Canberra. ```py\nprint('thanks!')\n```"
    assert strip_warmth("Thanks so much!") == "Thanks so much!"  # nothing would be left: unchanged
