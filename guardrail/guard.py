"""The guard: ``Guard().check(user_message, draft) -> Verdict``; this module runs the stages in order.

Stages (see DESIGN.md): emotion and crisis cues on the user turn; the beliefs the user states; the truth of
each (``guardrail.truth``: the sources in the user's order); the draft's stance toward each, read once with
the truth beside a refuted claim (a source that needs the stance first, the re-ask probe, gets the draft
read before the truth and again after it); the decision
(``guardrail.decide``, a pure function); a revision where the policy asks for one. ``check_batch`` runs
each stage once for the whole batch. One deadline per request bounds every stage; a failure never raises
into the caller: it returns ``status="error"|"timeout"`` under the fail policy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from detectors.beliefs import HEAD_CHARS, TAIL_CHARS
from detectors.text import first_and_last, sentence_spans, strip_span, window
from detectors.types import Belief, BeliefReport, StanceScores

from guardrail import deadline as budget
from guardrail import evidence, followup, respond
from guardrail.decide import Decision, Finding, PushBack, decide, endorsement
from guardrail.inputs import CheckItem, GuardInputError, parse_item
from guardrail.misconceptions import MisconceptionIndex
from guardrail.model import ModelClient
from guardrail.policy import Policy
from guardrail.reference import contains_answer
from guardrail.truth import IndexSource, SourceError, TruthContext, TruthQuery, build_sources, resolve
from guardrail.verdict import Verdict

__all__ = ["Guard", "Detectors", "GuardInputError"]

DEFAULT_SADNESS_THRESHOLD = 0.5  # for a custom emotion detector that carries no calibrated threshold


class Detectors:
    """The three detectors the guard needs, replaceable one by one.

    ``emotion``: object with ``predict(texts, histories=None) -> list[EmotionScores]`` (and, optionally, a
    calibrated ``sadness_threshold``); ``stance``: object with ``predict(list[(claim, draft[, question[,
    truth]])]) -> list[StanceScores]`` (one that sets ``reads_truth = True`` is asked again, with the truth,
    about each claim found false); ``beliefs``: callable ``(text) -> BeliefReport``. Missing ones are the
    embedded defaults from ``detectors``: the answer judge reads stance (``stance_path`` names the older
    stance head's weights instead).
    """

    def __init__(self, emotion: Any = None, stance: Any = None, beliefs: Optional[Callable[[str], BeliefReport]] = None,
                 *, emotion_path: Optional[str] = None, stance_path: Optional[str] = None) -> None:
        self._emotion, self._stance, self._beliefs = emotion, stance, beliefs
        self._emotion_path, self._stance_path = emotion_path, stance_path
        self._lock = threading.Lock()

    @classmethod
    def coerce(cls, value: Any) -> "Detectors":
        if value is None:
            return cls()
        if isinstance(value, Detectors):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"emotion", "stance", "beliefs", "emotion_path", "stance_path"}
            if unknown:
                raise TypeError(f"detectors dict has unknown keys {sorted(unknown)}: use emotion, stance, beliefs.")
            return cls(**value)
        raise TypeError(f"detectors must be a Detectors, a dict or None, got {type(value).__name__}.")

    @property
    def emotion(self) -> Any:
        if self._emotion is None:
            with self._lock:
                if self._emotion is None:
                    from detectors.emotion import EmotionDetector

                    self._emotion = EmotionDetector(path=self._emotion_path)
        return self._emotion

    @property
    def stance(self) -> Any:
        if self._stance is None:
            with self._lock:
                if self._stance is None and self._stance_path is not None:
                    from detectors.stance import StanceDetector

                    self._stance = StanceDetector(path=self._stance_path)
                elif self._stance is None:
                    from detectors.judge import get_judge

                    self._stance = get_judge()
        return self._stance

    def calibration(self) -> dict[str, float]:
        """The guard thresholds calibrated with the stance weights (``guard_thresholds`` of a given stance
        model; the shipped answer judge's, read from its config without loading it; none for the older
        stance head)."""
        if self._stance is not None:
            return dict(getattr(self._stance, "guard_thresholds", None) or {})
        if self._stance_path is not None:
            return {}
        from detectors.judge import guard_thresholds

        return guard_thresholds()

    @property
    def beliefs(self) -> Callable[[str], BeliefReport]:
        if self._beliefs is None:
            from detectors.beliefs import extract_beliefs

            self._beliefs = extract_beliefs
        return self._beliefs


@dataclass(eq=False)
class _Check:
    """One item in flight: its input, its verdict so far, and what the stages found."""

    item: CheckItem
    verdict: Verdict = field(default_factory=Verdict)
    findings: list[Finding] = field(default_factory=list)
    earlier: Optional[str] = None  # the previous assistant answer, when the user pushes back on it
    earlier_stance: Optional[StanceScores] = None  # the draft toward that answer
    decision: Optional[Decision] = None
    done: bool = False  # crisis or a failure: no sycophancy work


class Guard:
    """Checks a draft reply against the user's message before it goes out.

    ``model``: a callable(messages) -> str, an OpenAI-compatible base URL, or a ``ChatModel``; enables the
    re-ask probe and model-written revisions. ``truth``: the truth sources in the order to try them, by
    name (``"reference"``, ``"misconception_index"``, ``"reask"``), as a ``MisconceptionIndex``, or as any
    object with ``name`` and ``judge(queries, ctx)`` (see ``guardrail.truth.TruthSource``).
    """

    def __init__(self, model: Any = None, truth: Optional[Sequence[Any]] = None, policy: Optional[Policy] = None,
                 detectors: Any = None, *, model_name: Optional[str] = None, api_key: Optional[str] = None) -> None:
        if policy is not None and not isinstance(policy, Policy):
            if isinstance(policy, dict):
                policy = Policy.from_dict(policy)
            else:
                raise TypeError(f"policy must be a Policy or a dict, got {type(policy).__name__}: use Policy(...) or Policy.from_file(path).")
        self.detectors = Detectors.coerce(detectors)
        self.policy = (policy or Policy()).calibrated(self.detectors.calibration())
        self.model = ModelClient(model, model_name=model_name, api_key=api_key) if model is not None else None
        self.sources = build_sources(truth, self.policy, self.model)
        self._ready = False
        self._ready_lock = threading.Lock()

    # ---------------------------------------------------------------- public API
    @property
    def index(self) -> Optional[MisconceptionIndex]:
        return next((s.index for s in self.sources if isinstance(s, IndexSource)), None)

    @property
    def sadness_threshold(self) -> float:
        """The policy's value, else the one calibrated with the emotion weights."""
        if self.policy.sadness_threshold is not None:
            return self.policy.sadness_threshold
        return float(getattr(self.detectors.emotion, "sadness_threshold", DEFAULT_SADNESS_THRESHOLD))

    def warmup(self) -> "Guard":
        """Load every model the checks need (outside any latency budget), and let a detector that has a
        ``warmup()`` do its one-off work (the embedded emotion detector: the crisis prototypes' vectors, the
        first ONNX run), so a user's first check does not pay for it."""
        with self._ready_lock:
            if self._ready:
                return self
            _ = self.detectors.emotion, self.detectors.stance, self.detectors.beliefs
            if self.index is not None:
                self.index.prepare()
            for detector in (self.detectors.emotion, self.detectors.stance):
                try:
                    if callable(getattr(detector, "warmup", None)):
                        detector.warmup()
                except Exception:  # the first check meets the same failure and reports it by the fail policy
                    pass
            self._ready = True
        return self

    def check(self, user_message: Any, draft: Any, *, history: Any = None, reference: Any = None) -> Verdict:
        """Check one draft; never raises for a detector failure (see the fail policy); raises
        ``GuardInputError`` for arguments of the wrong type."""
        item = {"user_message": user_message, "draft": draft, "history": history, "reference": reference}
        return self._run([self._parse(item, None)])[0]

    async def acheck(self, user_message: Any, draft: Any, *, history: Any = None, reference: Any = None) -> Verdict:
        """``check`` without blocking the event loop (it returns by the policy's deadline)."""
        return await asyncio.to_thread(self.check, user_message, draft, history=history, reference=reference)

    def check_batch(self, items: Iterable[Any]) -> list[Verdict]:
        """Check many drafts at once; each item is a dict (user_message, draft, history, reference) or a
        tuple (user_message, draft[, reference]). Stage work is batched across items; the whole batch shares
        one deadline of ``timeout_ms``."""
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
            raise GuardInputError(f"check_batch takes a list of items (dicts or tuples), got {type(items).__name__}.")
        return self._run([self._parse(item, n) for n, item in enumerate(items)])

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator for a chat function ``fn(messages, ...) -> str`` (sync or async): its reply is checked
        against the last user turn; the result is a ``GuardedText`` (a str) carrying ``.verdict``."""
        from guardrail.wrappers import wrap as _wrap

        return _wrap(self, fn)

    # ---------------------------------------------------------------- running
    def _parse(self, item: Any, n: Optional[int]) -> _Check:
        c = _Check(parse_item(item, n, answer_max_words=self.policy.reference_answer_max_words))
        if c.item.oversized:
            if self.policy.on_oversize == "unsupported":
                self._fail(c, "unsupported_input", f"{c.item.oversized[0]} is over 200,000 characters: split or shorten it")
            else:
                c.verdict.flags.append("oversize")
        return c

    def _run(self, checks: list[_Check]) -> list[Verdict]:
        if not checks:
            return []
        self.warmup()
        live = [c for c in checks if not c.done]
        failed: dict[int, Verdict] = {}
        if live:
            started = time.monotonic()
            deadline = started + self.policy.timeout_ms / 1000.0
            stage = ["emotion"]  # the stage running when a failure came
            try:
                budget.run_until(deadline, lambda: self._pipeline(live, deadline, stage))
            except budget.DeadlineExceeded:
                # the abandoned worker may still write into its own verdicts: the caller gets fresh ones
                for c in live:
                    failed[id(c)] = self._failure(c, "timeout", f"the check ran past timeout_ms={self.policy.timeout_ms:g}")
            except Exception as exc:  # a detector failed: the fail policy decides
                # our own contract errors are safe to show; others may quote input or secrets: class only
                detail = str(exc)[:200] if isinstance(exc, (ContractError, SourceError)) else f"in the {stage[0]} stage"
                for c in live:
                    failed[id(c)] = self._failure(c, "error", f"{type(exc).__name__}: {detail}")
            total = round((time.monotonic() - started) * 1000, 3)
            for c in live:
                failed.get(id(c), c.verdict).timings_ms["total"] = total
        return [failed.get(id(c), c.verdict) for c in checks]

    def _failure(self, c: _Check, status: str, message: str) -> Verdict:
        """A new verdict for an item whose check failed, following the fail policy. The abandoned worker may
        still be writing into ``c.verdict``: its fields are read with single C-level copies (``dict()``,
        ``list()``, atomic under the GIL), never a deep copy that a concurrent write could break."""
        v = c.verdict
        if v.crisis:  # the crisis route had already decided: keep it
            return Verdict(action=v.action, risk=v.risk, emotion=v.emotion, sad=v.sad, crisis=True,
                           language=v.language, reasons=list(v.reasons), flags=[*v.flags, f"later_stage_{status}"],
                           text=v.text, timings_ms=dict(v.timings_ms))
        shell = _Check(c.item, Verdict(emotion=v.emotion, sad=v.sad, language=v.language, timings_ms=dict(v.timings_ms)))
        self._fail(shell, status, message)
        return shell.verdict

    def _fail(self, c: _Check, status: str, message: str) -> None:
        v = c.verdict
        v.status = status  # type: ignore[assignment]
        v.error = message
        if self.policy.fail_closed:
            v.action, v.text = "block", self.policy.fail_closed_message
            v.flags.append("fail_closed")
        else:
            v.action, v.text = "pass", None
            v.flags.append("fail_open")
        v.reasons.append(f"check {status}: the draft was not fully checked")
        c.done = True

    # ---------------------------------------------------------------- the stages
    def _pipeline(self, checks: list[_Check], deadline: float, stage: list[str]) -> None:
        with _timed("emotion", checks, stage):
            self._emotion(checks)
        live = [c for c in checks if not c.done]
        budget.check(deadline, "beliefs")
        with _timed("beliefs", live, stage):
            self._beliefs(live)
        live = [c for c in live if not c.done and (c.findings or c.earlier or self._looks_up_message(c))]
        if live:
            # The draft is read once, after the truth is known, so a refuted claim is read with its truth
            # beside it. A source that asks a model only about claims the draft takes up (the re-ask
            # probe) needs the draft read first: then each refuted claim is read a second time.
            # A message with no belief is still looked up in the index, sentence by sentence.
            if self._reads_draft_first and any(c.findings or c.earlier for c in live):
                budget.check(deadline, "stance")
                with _timed("stance", live, stage):
                    self._stance(live)
            budget.check(deadline, "truth")
            with _timed("truth", live, stage):
                self._truth(live, deadline)
            live = [c for c in live if c.findings or c.earlier]
            if live:
                budget.check(deadline, "stance")
                with _timed("stance_with_truth" if self._reads_draft_first else "stance", live, stage):
                    self._stance(live)
        budget.check(deadline, "decision")
        stage[0] = "decision"
        for c in checks:
            if not c.done:
                self._decide(c)
        revising = [c for c in checks if c.verdict.action == "revise" and not c.done]
        if revising:
            with _timed("revise", revising, stage):
                self._revise(revising, deadline)

    def _emotion(self, checks: list[_Check]) -> None:
        histories = [[m["content"] for m in c.item.history if m["role"] == "user"][-3:] for c in checks]
        emotions = self.detectors.emotion.predict([c.item.user for c in checks], histories=histories)
        _expect_len(emotions, checks, "emotion.predict")
        p = self.policy
        for c, e in zip(checks, emotions):
            v = c.verdict
            v.emotion = e
            v.sad = bool(e.sadness >= self.sadness_threshold or e.distress >= p.distress_threshold)
            if e.crisis if p.crisis_threshold is None else e.crisis_score >= p.crisis_threshold:
                self._crisis(c)

    def _crisis(self, c: _Check) -> None:
        v = c.verdict
        v.crisis = True
        v.reasons.append("crisis cues in the user message: supportive reply with resources")
        action = self.policy.on_crisis
        v.action = action  # type: ignore[assignment]
        if action in ("revise", "block"):
            v.text = respond.CRISIS_REPLY
        elif action == "annotate":
            v.text = respond.annotate(c.item.draft, respond.CRISIS_REPLY)
        v.risk = 1.0
        c.done = True

    def _beliefs(self, checks: list[_Check]) -> None:
        p = self.policy
        for c in checks:
            report = followup.beliefs_in_context(self.detectors.beliefs, c.item.user, c.item.history)
            c.verdict.language = report.language
            if report.language not in ("en", "und") and not report.beliefs:
                self._fail(c, "unsupported_input",
                           f"language {report.language!r} is not supported by the belief detector (English only)")
                continue
            for b in report.beliefs[: p.max_beliefs]:
                c.findings.append(Finding(belief=b, question=b.question or report.question, reference=c.item.reference))
            if len(report.beliefs) > p.max_beliefs:
                c.verdict.flags.append("beliefs_truncated")
            if report.truncated:  # the middle of a long message was not read
                c.verdict.flags.append("beliefs_window")
        self._reference_sentences([c for c in checks if not c.done and c.item.reference is not None
                                   and c.item.reference.context])
        for c in checks:
            if not c.done:
                c.earlier = followup.earlier_answer(c.item.user, c.item.history, bool(c.findings))

    def _reference_sentences(self, checks: list[_Check]) -> None:
        """Where the caller passed a reference passage, the message sentence nearest it is read as a belief
        too, unless an extracted belief covers it. The extractor misses bare assertions ("they can't fire me
        for what I post") and takes small talk for beliefs, and a claim that carries small talk misleads the
        judge. On the training conversations' dev split (391 rows, the truth as reference; judge run H2) this
        caught 108 of 138 sycophantic drafts against 102 with the whole message read where no belief was
        found, with 30 of 233 false flags either way."""
        if not checks:
            return
        from detectors.encoder import get_encoder  # the shared encoder: the message's pass is cached

        encoder = get_encoder()
        passages = encoder.encode([c.item.reference.context for c in checks]).vectors
        for c, target in zip(checks, passages):
            near = nearest_sentence(c.item.user, target, encoder) or (None if c.findings else whole_message(c.item.user))
            if near is not None and not any(_covers(f, near) for f in c.findings):
                c.findings.append(Finding(belief=near, reference=c.item.reference))

    @property
    def _reads_draft_first(self) -> bool:
        return any(getattr(s, "needs_endorsement", False) for s in self.sources)

    def _stance(self, checks: list[_Check]) -> None:
        """One stance batch of what is not read yet: each claim against the draft (with the truth beside
        it once a source refuted the claim and the stance model reads truth), and on push-back the earlier
        answer against the draft and each claim against the earlier answer."""
        pairs: list[tuple] = []
        setters: list[Callable[[StanceScores], None]] = []
        reads_truth = getattr(self.detectors.stance, "reads_truth", False)

        def ask(pair: tuple, setter: Callable[[StanceScores], None]) -> None:
            pairs.append(pair)
            setters.append(setter)

        for c in checks:
            for f in c.findings:
                if reads_truth and _refuted(f) and not f.read_with_truth:
                    ask((_claim_side(f), c.item.draft, f.question, f.truth.statement),
                        lambda s, f=f: setattr(f, "stance", s))
                    f.read_with_truth = True
                elif f.stance is None:
                    ask((f.belief.claim, c.item.draft, f.question) if f.question else (f.belief.claim, c.item.draft),
                        lambda s, f=f: setattr(f, "stance", s))
            if c.earlier and c.earlier_stance is None:  # the earlier answer against the draft, the pushed claim as the other side
                pushed = c.findings[0].belief.claim if c.findings else None
                ask((c.earlier, c.item.draft, None, pushed) if pushed else (c.earlier, c.item.draft),
                    lambda s, c=c: setattr(c, "earlier_stance", s))
                for f in c.findings:
                    ask((f.belief.claim, c.earlier), lambda s, f=f: setattr(f, "earlier", s))
        scores = self.detectors.stance.predict(pairs) if pairs else []
        _expect_len(scores, pairs, "stance.predict")
        for setter, s in zip(setters, scores):
            setter(s)

    def _truth(self, checks: list[_Check], deadline: float) -> None:
        findings = [(c, f) for c in checks for f in c.findings]
        queries = [TruthQuery(claim=f.belief.claim, polarity=f.belief.polarity, question=f.question,
                              reference=f.reference,
                              endorsement=endorsement(f.stance, self.policy) if f.stance is not None else None)
                   for _, f in findings]
        ctx = TruthContext(stance=self.detectors.stance, policy=self.policy, deadline=deadline)
        for (c, f), result in zip(findings, resolve(queries, self.sources, ctx)):
            f.truth = result
            if result.source == "reask" and "reask_used" not in c.verdict.flags:
                c.verdict.flags.append("reask_used")
        self._message_truth(checks, ctx)
        if not getattr(self.detectors.stance, "reads_truth", False):
            for c, f in findings:  # a stance model that cannot read the truth: the word evidence helps it
                f.cross_check = evidence.cross_check(f.belief.claim, f.truth, c.item.draft)

    def _looks_up_message(self, c: _Check) -> bool:
        """Without a reference, a message whose beliefs no source decides is looked up in the index whole
        (sentence by sentence): the extractor misses beliefs stated in plans and asides."""
        return c.item.reference is None and self.index is not None

    def _message_truth(self, checks: list[_Check], ctx: TruthContext) -> None:
        """Where no finding of a check was decided, its sentences and extracted claims are looked up in the
        misconception index (``IndexSource.judge_sentences``). A matched claim takes the result; a matched
        sentence becomes a belief of kind ``sentence``."""
        todo = [c for c in checks if self._looks_up_message(c) and all(f.truth.truth == "unknown" for f in c.findings)]
        if not todo:
            return
        source = next(s for s in self.sources if isinstance(s, IndexSource))  # _looks_up_message: there is one
        sentences = [message_sentences(c.item.user) for c in todo]
        candidates = [[f.belief.claim for f in c.findings] + [text for text, _ in s] for c, s in zip(todo, sentences)]
        # the sentences are read in the message's own pass (shared with the emotion stage), not one by one
        vectors = [[None] * len(c.findings) + source.index.span_vectors(c.item.user, [span for _, span in s])
                   for c, s in zip(todo, sentences)]
        for c, spans, found in zip(todo, sentences, source.judge_sentences(candidates, ctx, vectors)):
            if found is None:
                continue
            k, result = found
            if k < len(c.findings):
                c.findings[k].truth = result
            else:
                text, span = spans[k - len(c.findings)]
                c.findings.append(Finding(belief=Belief(claim=text, span=span, polarity="affirms", kind="sentence"), truth=result))

    def _decide(self, c: _Check) -> None:
        push_back = None
        if c.earlier:
            push_back = PushBack(c.earlier, c.earlier_stance, evidence.takes_up_pushed_answer(
                c.earlier, c.item.draft, [f.belief.claim for f in c.findings]))
        d = c.decision = decide(c.findings, sad=c.verdict.sad, policy=self.policy, push_back=push_back)
        v = c.verdict
        v.action, v.risk, v.capitulation = d.action, d.risk, d.capitulation
        v.beliefs.extend(d.beliefs)
        v.reasons.extend(d.reasons)
        v.flags.extend(d.flags)
        if d.action == "annotate":
            v.text = respond.annotate(c.item.draft, respond.correction_note(d.correction) or self.policy.annotation_note)
        elif d.action == "block":
            v.text = self.policy.block_message

    def _revise(self, checks: list[_Check], deadline: float) -> None:
        """A model-written revision where a model is configured (checked again: it must not go along with
        the claim), else, or on failure, the template from the correction."""
        p = self.policy
        owners = [c for c in checks if c.decision.correction] if self.model is not None and p.revise_with_model else []
        revised: dict[int, str] = {}
        if owners and time.monotonic() < deadline:
            try:
                prompts = [respond.revision_prompt(c.item.user, c.decision.claim, c.decision.correction) for c in owners]
                answers = self.model.complete(prompts, max_new_tokens=p.revise_max_new_tokens,
                                              timeout_s=deadline - time.monotonic())
                rechecked = self.detectors.stance.predict([(c.decision.claim, a) for c, a in zip(owners, answers)])
                for c, answer, s in zip(owners, answers, rechecked):
                    if answer.strip() and endorsement(s, p) < p.revision_max_endorsement:
                        revised[id(c)] = answer.strip()
            except Exception:  # the template below still corrects the belief
                pass
        for c in checks:
            v, d = c.verdict, c.decision
            if id(c) in revised:
                v.text = revised[id(c)]
                v.flags.append("revise_model")
                continue
            if d.correction:
                v.text = respond.template_revision(d.correction, sad=v.sad)
            elif d.capitulation and c.earlier:
                v.text = respond.template_capitulation(c.earlier, sad=v.sad)
            v.flags.append("revise_template")


def whole_message(message: str) -> Belief:
    """The whole message as a belief, where no sentence of it is readable and the caller gave a reference
    passage: the judge reads the passage against it and the draft against both, as it was trained to
    (``training/judge.py:message_items``)."""
    start, end = strip_span(message, 0, len(message))
    return Belief(claim=message[start:end], span=(start, end), polarity="affirms", kind="message")


def nearest_sentence(message: str, target: Any, encoder: Any) -> Optional[Belief]:
    """The sentence of ``message`` (``message_sentences``) whose vector, pooled from the message's one pass,
    is nearest ``target`` (a unit vector of a reference passage); None when no sentence is readable."""
    import numpy as np

    sentences = message_sentences(message)
    vectors = encoder.span_vectors(message, [span for _, span in sentences]) if sentences else []
    scored = [(float(np.dot(v, target)), k) for k, v in enumerate(vectors) if v is not None]
    if not scored:
        return None
    text, span = sentences[max(scored)[1]]
    return Belief(claim=text, span=span, polarity="affirms", kind="message")


MESSAGE_SENTENCES = 40  # sentences of a message looked up in the index (of the window the extractor reads)
SENTENCE_CHARS = 400


def message_sentences(message: str) -> list[tuple[str, tuple[int, int]]]:
    """The sentences of a message's readable window (the extractor's; at most ``MESSAGE_SENTENCES``, the
    first and the last), each cut to ``SENTENCE_CHARS``, with its span in the message."""
    view = window(message, HEAD_CHARS, TAIL_CHARS)
    spans = sentence_spans(view.text)
    out = []
    for a, b in first_and_last(spans, MESSAGE_SENTENCES):
        a, b = strip_span(view.text, a, b)
        a, b = strip_span(view.text, a, min(b, a + SENTENCE_CHARS))
        out.append((view.text[a:b], view.span_to_original(a, b)))
    return out


def _covers(f: Finding, sentence: Belief) -> bool:
    """An extracted belief covers a message sentence that overlaps its span or is the question it answers
    ("What's the capital of Australia?" for "I'm pretty sure it's Sydney")."""
    overlaps = f.belief.span[0] < sentence.span[1] and sentence.span[0] < f.belief.span[1]
    return overlaps or (f.question or "").strip() == sentence.claim.strip()


def _refuted(f: Finding) -> bool:
    return f.truth.truth == "false" and bool(f.truth.statement)


def _claim_side(f: Finding) -> str:
    """The claim in the same form as the truth beside it: the source's own wording of the false claim
    where it has one (an index entry's claim, parallel to its truth: on the index dev set and the training
    conversations this caught more than the user's words did, with about as many false flags); where
    the truth is a list of short answers, the user's own short answer (as stated, or the reference's wrong
    answer the claim names); else the claim (for a ``message`` belief, the message sentence nearest the
    reference passage: the judge was trained to read it so)."""
    if f.truth.claim:
        return f.truth.claim
    if f.truth.answers:
        known = f.reference.incorrect if f.reference is not None else []
        named = f.belief.answer or next((a for a in known if contains_answer(f.belief.claim, a)), None)
        if named:
            return named
    return f.belief.claim


@contextmanager
def _timed(stage: str, checks: Sequence[_Check], current: list[str]) -> Iterator[None]:
    """Wall time of a stage in ms, written into every verdict of the batch that ran it; ``current`` names
    the stage running (for the error message)."""
    current[0] = stage
    started = time.perf_counter()
    try:
        yield
    finally:
        ms = round((time.perf_counter() - started) * 1000, 3)
        for c in checks:
            c.verdict.timings_ms[stage] = ms


class ContractError(RuntimeError):
    """A detector broke its contract (wrong number or type of results); the message is ours, safe to show."""


def _expect_len(result: Any, items: Sequence[Any], name: str) -> None:
    if not isinstance(result, list) or len(result) != len(items):
        got = len(result) if isinstance(result, list) else type(result).__name__
        raise ContractError(f"{name} returned {got} results for {len(items)} inputs")
