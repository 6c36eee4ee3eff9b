"""The guard: ``Guard().check(user_message, draft) -> Verdict``.

Stages (see DESIGN.md): emotion and crisis cues on the user turn; beliefs the user states; the truth
of each belief (reference ▸ misconception index ▸ re-ask probe ▸ unknown); the draft's stance toward
each belief; capitulation against the history; then the policy picks the action. ``check_batch`` runs
each stage once for the whole batch, so the encoder work is batched. A latency budget and a fail policy
wrap the whole check: a failure never raises into the caller, it returns ``status="error"|"timeout"``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from detectors.text import MAX_CHARS, InvalidTextError, validate_text
from detectors.types import Belief, BeliefReport, StanceScores

from guardrail import respond
from guardrail.policy import Policy
from guardrail.truth import (
    UNKNOWN,
    IndexMatch,
    contains_answer,
    negation_parity,
    MisconceptionIndex,
    ModelClient,
    Reference,
    TruthResult,
    judge_by_reference,
    neutral_question,
    parse_true_false,
)
from guardrail.verdict import BeliefFinding, Verdict, text_digest

SEVERITY = {"pass": 0, "annotate": 1, "revise": 2, "block": 3}
PUSHBACK = re.compile(
    r"\b(are you sure|you'?re wrong|that'?s (?:wrong|not right|incorrect)|i (?:really |still |honestly )?(?:think|believe|feel)|"
    r"i don'?t think so|i disagree|no,|actually|but i|really\?|i'?m pretty sure|i'?m sure)",
    re.IGNORECASE,
)


class GuardInputError(InvalidTextError):
    """An argument of ``check`` has the wrong type or shape; the message names it and the fix."""


class GuardTimeout(TimeoutError):
    """A check ran past the policy's ``timeout_ms``."""


# ------------------------------------------------------------------------------------- detectors
class Detectors:
    """The three detectors the guard needs, replaceable one by one.

    ``emotion``: object with ``predict(texts, histories=None) -> list[EmotionScores]``;
    ``stance``: object with ``predict(list[(claim, draft[, question])]) -> list[StanceScores]``;
    ``beliefs``: callable ``(text) -> BeliefReport``. Missing ones are the embedded defaults from ``detectors``.
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
                if self._stance is None:
                    from detectors.stance import StanceDetector

                    self._stance = StanceDetector(path=self._stance_path)
        return self._stance

    @property
    def beliefs(self) -> Callable[[str], BeliefReport]:
        if self._beliefs is None:
            from detectors.beliefs import extract_beliefs

            self._beliefs = extract_beliefs
        return self._beliefs


# ------------------------------------------------------------------------------------- work items
@dataclass
class _Finding:
    belief: Belief
    question: Optional[str]
    truth: TruthResult = field(default_factory=lambda: UNKNOWN)
    stance: Optional[StanceScores] = None
    truth_stance: Optional[StanceScores] = None  # the draft's stance toward the true statement
    match: Optional[IndexMatch] = None  # the nearest misconception-index entry
    side: Optional[StanceScores] = None  # does the entry's true statement confirm or refute the claim?
    earlier: Optional[StanceScores] = None  # the previous assistant answer's stance toward the claim
    neutral: Optional[str] = None
    cross_check: Optional[str] = None  # "states_truth" | "repeats_claim" | None (see _cross_check)


@dataclass
class _Item:
    user: str
    draft: str
    history: list[dict[str, str]]
    reference: Optional[Reference]
    verdict: Verdict = field(default_factory=Verdict)
    report: Optional[BeliefReport] = None
    findings: list[_Finding] = field(default_factory=list)
    earlier: Optional[str] = None  # the previous assistant answer, when the user pushes back on it
    capitulation_stance: Optional[StanceScores] = None
    done: bool = False  # crisis or unsupported: no sycophancy work


_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="guard")


def _coerce_history(history: Any, index: str) -> list[dict[str, str]]:
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise GuardInputError(f"history{index} must be a list of {{'role', 'content'}} messages, got {type(history).__name__}.")
    out = []
    for n, message in enumerate(history):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise GuardInputError(
                f"history{index}[{n}] must be a dict with 'role' and 'content' (like an OpenAI chat message), "
                f"got {type(message).__name__}."
            )
        role = message["role"]
        if role not in ("system", "user", "assistant", "tool", "developer"):
            raise GuardInputError(f"history{index}[{n}]['role'] must be system, user or assistant, got {role!r}.")
        content = message["content"]
        if content is None:
            content = ""
        out.append({"role": role, "content": validate_text(content, f"history{index}[{n}]['content']")})
    return out


class Guard:
    """Checks a draft reply against the user's message before it goes out.

    ``model``: a callable(messages) -> str, an OpenAI-compatible base URL, or a ``ChatModel``; enables the
    re-ask probe and model-based revisions. ``truth``: the truth sources in order, by name
    (``"reference"``, ``"misconception_index"``, ``"reask"``) or as a ``MisconceptionIndex`` instance.
    """

    def __init__(self, model: Any = None, truth: Optional[Sequence[Any]] = None, policy: Optional[Policy] = None,
                 detectors: Any = None, *, model_name: Optional[str] = None, api_key: Optional[str] = None) -> None:
        if policy is not None and not isinstance(policy, Policy):
            if isinstance(policy, dict):
                policy = Policy.from_dict(policy)
            else:
                raise TypeError(f"policy must be a Policy or a dict, got {type(policy).__name__}: use Policy(...) or Policy.from_file(path).")
        self.policy = policy or Policy()
        self.detectors = Detectors.coerce(detectors)
        self.model = ModelClient(model, model_name=model_name, api_key=api_key) if model is not None else None
        self.sources: list[Any] = []
        for source in (["reference", "misconception_index", "reask"] if truth is None else list(truth)):
            if source == "misconception_index":
                source = MisconceptionIndex.default(min_similarity=self.policy.index_min_similarity, margin=self.policy.index_margin)
            if isinstance(source, str) and source not in ("reference", "reask"):
                raise TypeError(f"unknown truth source {source!r}: use 'reference', 'misconception_index', 'reask' or a MisconceptionIndex.")
            if not isinstance(source, (str, MisconceptionIndex)):
                raise TypeError(f"truth sources must be names or MisconceptionIndex objects, got {type(source).__name__}.")
            self.sources.append(source)
        self._ready = False
        self._ready_lock = threading.Lock()

    # ---------------------------------------------------------------- public API
    @property
    def index(self) -> Optional[MisconceptionIndex]:
        return next((s for s in self.sources if isinstance(s, MisconceptionIndex)), None)

    def warmup(self) -> "Guard":
        """Load every model the checks need (outside any latency budget)."""
        with self._ready_lock:
            if self._ready:
                return self
            _ = self.detectors.emotion, self.detectors.stance, self.detectors.beliefs
            if self.index is not None:
                self.index.prepare()
            self._ready = True
        return self

    def check(self, user_message: Any, draft: Any, *, history: Any = None, reference: Any = None) -> Verdict:
        """Check one draft; never raises for a detector failure (see the fail policy); raises
        ``GuardInputError`` for arguments of the wrong type."""
        return self.check_batch([{"user_message": user_message, "draft": draft, "history": history,
                                  "reference": reference, "_single": True}])[0]

    async def acheck(self, user_message: Any, draft: Any, *, history: Any = None, reference: Any = None) -> Verdict:
        """``check`` without blocking the event loop (the work runs in a worker thread)."""
        return await asyncio.to_thread(self.check, user_message, draft, history=history, reference=reference)

    def check_batch(self, items: Iterable[Any]) -> list[Verdict]:
        """Check many drafts at once; each item is a dict (user_message, draft, history, reference) or a
        tuple (user_message, draft[, reference]). Stage work is batched across items."""
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
            raise GuardInputError(f"check_batch takes a list of items (dicts or tuples), got {type(items).__name__}.")
        work = [self._parse(item, n) for n, item in enumerate(items)]
        if not work:
            return []
        self.warmup()
        live = [w for w in work if not w.done]
        failed: dict[int, Verdict] = {}
        if live:
            budget = self.policy.timeout_ms * max(1, len(live)) / 1000.0
            started = time.perf_counter()
            future = _EXECUTOR.submit(self._pipeline, live, started + budget)
            try:
                future.result(timeout=budget)
            except (concurrent.futures.TimeoutError, GuardTimeout):
                # The worker may still be running and writing into its own verdicts: the caller gets
                # fresh ones that nothing else touches.
                for w in live:
                    failed[id(w)] = self._failure(w, "timeout", f"the check ran past timeout_ms={self.policy.timeout_ms:g}")
            except Exception as exc:  # a detector failed: the fail policy decides
                for w in live:
                    failed[id(w)] = self._failure(w, "error", f"{type(exc).__name__}: {_safe_message(exc)}")
            total = round((time.perf_counter() - started) * 1000, 3)
            for w in live:
                failed.get(id(w), w.verdict).timings_ms["total"] = total
        return [failed.get(id(w), w.verdict) for w in work]

    def _failure(self, w: _Item, status: str, message: str) -> Verdict:
        """A new verdict for an item whose check failed, following the fail policy."""
        old = w.verdict.model_copy(deep=True)
        if old.crisis:  # the crisis route had already decided: keep it
            old.flags.append(f"later_stage_{status}")
            return old
        shell = _Item(user="", draft="", history=[], reference=None)
        shell.verdict = Verdict(emotion=old.emotion, sad=old.sad, language=old.language, timings_ms=dict(old.timings_ms))
        self._fail(shell, status, message)
        return shell.verdict

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator for a chat function ``fn(messages, ...) -> str`` (sync or async): its reply is checked
        against the last user turn, and the policy's text replaces it when the action changes it.
        The last verdict is kept on the wrapper as ``.last_verdict``."""
        from guardrail.wrappers import wrap as _wrap

        return _wrap(self, fn)

    # ---------------------------------------------------------------- parsing
    def _parse(self, item: Any, n: int) -> _Item:
        index = f" (item {n})"
        if isinstance(item, dict):
            unknown = set(item) - {"user_message", "draft", "history", "reference", "_single"}
            if unknown:
                raise GuardInputError(f"check_batch item {n} has unknown keys {sorted(unknown)}: use user_message, draft, history, reference.")
            if item.get("_single"):
                index = ""
            user, draft = item.get("user_message"), item.get("draft")
            history, reference = item.get("history"), item.get("reference")
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            user, draft = item[0], item[1]
            reference = item[2] if len(item) == 3 else None
            history = None
        else:
            raise GuardInputError(f"check_batch item {n} must be a dict or a (user_message, draft[, reference]) tuple, got {type(item).__name__}.")
        for name, value in (("user_message", user), ("draft", draft)):
            if isinstance(value, (bytes, bytearray)):
                raise GuardInputError(f"{name}{index} must be a str, got bytes: decode it first (e.g. value.decode('utf-8')).")
            if not isinstance(value, str):
                raise GuardInputError(f"{name}{index} must be a str, got {type(value).__name__}.")
        try:
            ref = Reference.coerce(reference)
        except TypeError as exc:
            raise GuardInputError(f"{exc}{index}") from None
        hist = _coerce_history(history, index)
        oversized = [name for name, value in (("user_message", user), ("draft", draft)) if len(value) > MAX_CHARS]
        if oversized:
            w = _Item(user="", draft="", history=[], reference=None, done=True)
            name = oversized[0]
            self._fail(w, "unsupported_input", f"{name} has more than {MAX_CHARS:,} characters: split it or shorten it")
            return w
        return _Item(user=validate_text(user, "user_message"), draft=validate_text(draft, "draft"), history=hist, reference=ref)

    # ---------------------------------------------------------------- failure
    def _fail(self, w: _Item, status: str, message: str) -> None:
        v = w.verdict
        v.status = status  # type: ignore[assignment]
        v.error = message
        if self.policy.fail_closed:
            v.action, v.text = "block", self.policy.fail_closed_message
            v.flags.append("fail_closed")
        else:
            v.action, v.text = "pass", None
            v.flags.append("fail_open")
        v.reasons.append(f"check {status}: the draft was not fully checked")
        w.done = True

    # ---------------------------------------------------------------- the pipeline
    def _pipeline(self, items: list[_Item], deadline: float) -> None:
        timer = _Timer(items)
        with timer("emotion"):
            histories = [[m["content"] for m in w.history if m["role"] == "user"][-3:] for w in items]
            emotions = self.detectors.emotion.predict([w.user for w in items], histories=histories)
            _expect_len(emotions, items, "emotion.predict")
        for w, e in zip(items, emotions):
            v = w.verdict
            v.emotion = e
            v.sad = bool(e.sadness >= self.policy.sadness_threshold or e.distress >= self.policy.distress_threshold)
            crisis = e.crisis if self.policy.crisis_threshold is None else e.crisis_score >= self.policy.crisis_threshold
            if crisis:
                self._crisis(w)
        live = [w for w in items if not w.done]
        with timer("beliefs", live):
            for w in live:
                w.report = self._extract(w)
                w.verdict.language = w.report.language
                if w.report.language not in ("en", "und") and w.report.beliefs == []:
                    w.verdict.status = "unsupported_input"
                    w.verdict.error = f"language {w.report.language!r} is not supported by the belief detector (English only)"
                    w.verdict.flags.append("fail_open")
                    w.done = True
                    continue
                for b in w.report.beliefs[: self.policy.max_beliefs]:
                    w.findings.append(_Finding(belief=b, question=b.question or w.report.question))
                if len(w.report.beliefs) > self.policy.max_beliefs:
                    w.verdict.flags.append("beliefs_truncated")
                w.earlier = self._earlier_answer(w)
        live = [w for w in items if not w.done and (w.findings or w.earlier)]
        if not live:
            for w in items:
                self._decide(w)
            return
        with timer("truth", live):
            self._truth_static(live)
        _check_deadline(deadline)
        with timer("stance", live):
            self._stance(live)
        if self.model is not None and self.policy.use_reask and "reask" in self.sources:
            probe = [(w, f) for w in live for f in w.findings if f.truth.truth == "unknown" and _endorse_p(f.stance, self.policy) >= 0.3]
            if probe:
                with timer("reask", [w for w, _ in probe]):
                    self._reask(probe)
        _check_deadline(deadline)
        for w in items:
            self._decide(w)
        revising = [w for w in items if w.verdict.action == "revise" and "revise_pending" in w.verdict.flags]
        if revising:
            with timer("revise", revising):
                self._revise(revising, deadline)

    def _crisis(self, w: _Item) -> None:
        v = w.verdict
        v.crisis = True
        v.reasons.append("crisis cues in the user message: supportive reply with resources")
        action = self.policy.on_crisis
        v.action = action  # type: ignore[assignment]
        if action in ("revise", "block"):
            v.text = respond.CRISIS_REPLY
        elif action == "annotate":
            v.text = respond.annotate(w.draft, respond.CRISIS_REPLY)
        v.risk = 1.0
        w.done = True

    def _extract(self, w: _Item) -> BeliefReport:
        """Beliefs of the user turn. A follow-up without its own question ("Are you sure? I think it's X")
        is read after the previous user question, so the claim is a full sentence."""
        report = self.detectors.beliefs(w.user)
        previous = next((m["content"] for m in reversed(w.history) if m["role"] == "user" and m["content"].strip()), None)
        if previous is None or not report.beliefs or (report.question and not PUSHBACK.search(report.question)):
            return report
        offset = len(previous) + 1
        joined = self.detectors.beliefs(f"{previous}\n{w.user}")
        mine = [b.model_copy(update={"span": (b.span[0] - offset, b.span[1] - offset)})
                for b in joined.beliefs if b.span[0] >= offset]
        if not mine:
            return report
        return report.model_copy(update={"beliefs": mine, "question": joined.question})

    def _earlier_answer(self, w: _Item) -> Optional[str]:
        """The previous assistant answer, when this user turn pushes back on it."""
        if not w.history:
            return None
        last_assistant = next((m for m in reversed(w.history) if m["role"] == "assistant" and m["content"].strip()), None)
        if last_assistant is None:
            return None
        if not (PUSHBACK.search(w.user) or w.findings):
            return None
        return respond.first_sentences(last_assistant["content"], 2)

    def _truth_static(self, items: list[_Item]) -> None:
        """Reference, then the misconception index (batched over every claim of every item)."""
        pending: list[_Finding] = []
        for w in items:
            for f in w.findings:
                if "reference" in self.sources and w.reference is not None:
                    f.truth = judge_by_reference(f.belief.claim, f.belief.polarity, w.reference)
                if f.truth.truth == "unknown":
                    pending.append(f)
        for source in self.sources:
            if not isinstance(source, MisconceptionIndex) or not pending:
                continue
            matches = source.lookup([f.belief.claim for f in pending], [f.belief.polarity for f in pending])
            still = []
            for f, m in zip(pending, matches):
                if m is None:
                    still.append(f)
                    continue
                f.match = m
                if m.truth != "unknown":
                    f.truth = TruthResult(m.truth, "misconception_index", m.confidence, m.entry.correction(), m.entry.id)
            pending = still

    def _resolve_index_side(self, f: _Finding) -> None:
        """Which side of the matched entry the claim is on. Embeddings decide when the two sides are far
        apart; when they are close (a claim and its negation embed alike), the stance model reads the
        entry's true statement against the claim."""
        m, s = f.match, f.side
        if m is None:
            return
        truth = m.truth if m.margin >= 0.05 else None
        if truth is None:  # close call: which side's own words does the claim use?
            claim_words = _content_words(f.belief.claim)
            false_words, true_words = _content_words(m.entry.claim), _content_words(m.entry.truth)
            hits_false = len(claim_words & (false_words - true_words))
            hits_true = len(claim_words & (true_words - false_words))
            if hits_true != hits_false:
                truth = "true" if hits_true > hits_false else "false"
                if negation_parity(f.belief.claim) != negation_parity(m.entry.truth if truth == "true" else m.entry.claim):
                    truth = "false" if truth == "true" else "true"
        if truth is None and s is not None:
            if s.corrects >= 0.6 and s.corrects > s.endorses:
                truth = "false"
            elif s.endorses >= 0.6 and s.endorses > s.corrects:
                truth = "true"
        if truth is None:
            truth = m.truth
        if truth == "unknown":
            f.truth = UNKNOWN
            return
        confidence = m.confidence if truth == m.truth and m.confidence else round(m.similarity, 4)
        f.truth = TruthResult(truth, "misconception_index", confidence, m.entry.correction(), m.entry.id)

    def _stance(self, items: list[_Item]) -> None:
        """One stance batch: each claim vs the draft, the true statement vs the draft, the earlier answer
        vs the draft, and claims vs a reference passage."""
        pairs: list[tuple] = []
        slots: list[tuple[Any, str]] = []
        for w in items:
            for f in w.findings:
                pairs.append((f.belief.claim, w.draft, f.question) if f.question else (f.belief.claim, w.draft))
                slots.append((f, "stance"))
                if f.match is not None:
                    if self.policy.confirm_with_truth_statement:
                        pairs.append((f.match.entry.truth, w.draft))
                        slots.append((f, "truth_stance"))
                    pairs.append((f.belief.claim, f.match.entry.truth))
                    slots.append((f, "side"))
                if f.truth.truth == "unknown" and w.reference is not None and w.reference.context and "reference" in self.sources:
                    pairs.append((f.belief.claim, w.reference.context))
                    slots.append((f, "reference_context"))
            if w.earlier:
                pairs.append((w.earlier, w.draft))
                slots.append((w, "capitulation"))
                for f in w.findings:  # did the earlier answer reject the belief the user now pushes?
                    pairs.append((f.belief.claim, w.earlier))
                    slots.append((f, "earlier"))
        # Two calls: the short claim-vs-truth pairs would otherwise be padded to the drafts' length.
        short = [i for i, (_, kind) in enumerate(slots) if kind == "side"]
        long = [i for i, (_, kind) in enumerate(slots) if kind != "side"]
        scores: list[Any] = [None] * len(pairs)
        for group in (short, long):
            if group:
                got = self.detectors.stance.predict([pairs[i] for i in group])
                _expect_len(got, group, "stance.predict")
                for i, sc in zip(group, got):
                    scores[i] = sc
        for (obj, kind), s in zip(slots, scores):
            if kind == "stance":
                obj.stance = s
            elif kind == "truth_stance":
                obj.truth_stance = s
            elif kind == "side":
                obj.side = s
            elif kind == "earlier":
                obj.earlier = s
            elif kind == "capitulation":
                obj.capitulation_stance = s
            elif kind == "reference_context":
                label = s.label
                if label in ("endorses", "corrects") and max(s.endorses, s.corrects) >= 0.5:
                    truth = "true" if label == "endorses" else "false"
                    obj.truth = TruthResult(truth, "reference", max(s.endorses, s.corrects), respond.first_sentences(
                        next(w.reference.context for w in items if obj in w.findings), 2))
        for w in items:
            for f in w.findings:
                if f.match is not None and f.truth.source in ("misconception_index", "none"):
                    self._resolve_index_side(f)

    def _reask(self, probe: list[tuple[_Item, _Finding]]) -> None:
        """Ask the model the question again without the framing and the belief; compare."""
        conversations, tf_flags = [], []
        for _, f in probe:
            messages, is_tf = neutral_question(f.belief.claim, f.question)
            conversations.append(messages)
            tf_flags.append(is_tf)
        answers = self.model.complete(conversations, max_new_tokens=self.policy.reask_max_new_tokens)
        pairs, slots = [], []
        for (w, f), answer, is_tf in zip(probe, answers, tf_flags):
            f.neutral = answer
            w.verdict.flags.append("reask_used") if "reask_used" not in w.verdict.flags else None
            if is_tf:
                verdict = parse_true_false(answer)
                if verdict is not None:
                    f.truth = TruthResult("true" if verdict else "false", "reask", 0.6,
                                          respond.first_sentences(answer, 2) if not verdict else None)
                continue
            pairs.append((f.belief.claim, answer, f.question) if f.question else (f.belief.claim, answer))
            slots.append(f)
        scores = self.detectors.stance.predict(pairs) if pairs else []
        for f, s in zip(slots, scores):
            # Words first: a neutral answer that never names the user's answer rejects it.
            own = _content_words(f.belief.claim) - _content_words(f.question or "")
            said = _content_words(f.neutral or "")
            if own and not (own & said):
                f.truth = TruthResult("false", "reask", 0.6, respond.first_sentences(f.neutral or "", 2))
                continue
            if own and own <= said and s.label != "corrects":
                f.truth = TruthResult("true", "reask", 0.6)
                continue
            if s.label == "corrects" and s.corrects >= 0.5:
                f.truth = TruthResult("false", "reask", float(s.corrects), respond.first_sentences(f.neutral or "", 2))
            elif s.label == "endorses" and s.endorses >= 0.5:
                f.truth = TruthResult("true", "reask", float(s.endorses))

    # ---------------------------------------------------------------- policy
    def _decide(self, w: _Item) -> None:
        v, p = w.verdict, self.policy
        if w.done and (v.crisis or v.status != "ok"):
            if v.status == "unsupported_input" and p.fail_closed:
                v.action, v.text = "block", p.fail_closed_message
            return
        threshold = p.threshold(v.sad)
        action, best_correction = "pass", None
        for f in w.findings:
            f.cross_check = _cross_check(f, w)
            finding = self._finding(f)
            v.beliefs.append(finding)
            if finding.risk < threshold:
                continue
            if finding.truth == "false":
                finding.sycophantic = True
                v.reasons.append(f"draft {f.stance.label if f.stance else 'endorses'} a belief that the {finding.truth_source} says is false")
                act = p.on_false_endorsement
                if act == "revise" and not finding.correction:
                    act = "annotate"
                best_correction = best_correction or (f, finding)
            elif finding.truth == "unknown" and (v.sad or p.annotate_unknown_when_not_sad):
                v.reasons.append("sad user's belief of unknown truth is endorsed: annotated, not blocked")
                act = p.on_unknown_endorsement
            else:
                continue
            if SEVERITY[act] > SEVERITY[action]:
                action = act
        v.risk = max([b.risk for b in v.beliefs] + [0.0])
        cap = w.capitulation_stance
        # Capitulation: the draft contradicts the earlier answer, or the earlier answer rejected the belief
        # the user now pushes and the draft goes along with it.
        flipped = any(f.earlier is not None and f.earlier.corrects >= p.capitulation_threshold
                      and _endorse_p(f.stance, p) >= p.capitulation_threshold for f in w.findings)
        if w.earlier and not flipped:  # word check: the draft takes up the pushed answer and drops its own
            earlier_words, draft_words = _content_words(w.earlier), _content_words(w.draft)
            for f in w.findings:
                claim_words = _content_words(f.belief.claim)
                pushed, own = claim_words - earlier_words, earlier_words - claim_words
                if pushed and own and pushed <= draft_words and not (own & draft_words):
                    flipped = True
        if w.earlier and (flipped or (cap is not None and cap.corrects >= p.capitulation_threshold)):
            v.capitulation = True
            v.reasons.append("draft abandons the earlier answer after push-back (capitulation)")
            v.risk = max(v.risk, float(cap.corrects) if cap else 0.0, max([_endorse_p(f.stance, p) for f in w.findings] + [0.0]))
            if SEVERITY[p.on_capitulation] > SEVERITY[action]:
                action = p.on_capitulation
        v.action = action  # type: ignore[assignment]
        if not v.beliefs and not v.capitulation:
            v.reasons.append("no belief stated: nothing to check")
        elif action == "pass":
            v.reasons.append(f"{len(v.beliefs)} belief(s) checked: the draft does not go along with a false one")
        if action == "annotate":
            note = respond.correction_note(best_correction[1].correction) if best_correction else None
            v.text = respond.annotate(w.draft, note or p.annotation_note)
        elif action == "block":
            v.text = p.block_message
        elif action == "revise":
            v.flags.append("revise_pending")
            w._correction = best_correction  # type: ignore[attr-defined]

    def _finding(self, f: _Finding) -> BeliefFinding:
        p = self.policy
        endorse = _endorse_p(f.stance, p)
        if f.truth_stance is not None and f.stance is not None:
            # The draft agrees with the true statement more than with the claim: it is not going along.
            lead = f.truth_stance.endorses - f.stance.endorses
            if lead > 0:
                endorse *= max(0.0, 1.0 - 2.0 * lead)
        if f.truth.truth == "false" and f.cross_check == "states_truth":
            endorse *= 0.25  # the draft states what the truth source says: it corrects, whatever the stance model read
        elif f.truth.truth == "false" and f.cross_check == "repeats_claim":
            endorse = max(endorse, 0.6)  # it repeats the false answer and never states the true one
        truth = f.truth
        if truth.truth == "false":
            risk = endorse * min(1.0, 0.4 + truth.confidence)
        elif truth.truth == "unknown":
            risk = endorse * 0.6
        else:
            risk = 0.0
        b = f.belief
        return BeliefFinding(
            claim=b.claim, claim_digest=text_digest(b.claim), polarity=b.polarity, kind=b.kind,
            stance=f.stance.label if f.stance else None, stance_scores=f.stance,
            truth=truth.truth, truth_source=truth.source if truth.truth != "unknown" else "none",  # type: ignore[arg-type]
            truth_confidence=round(min(1.0, max(0.0, truth.confidence)), 4), matched_entry=truth.entry_id,
            correction=truth.correction if truth.truth == "false" else None, risk=round(min(1.0, max(0.0, risk)), 4),
        )

    def _revise(self, items: list[_Item], deadline: float) -> None:
        """Model-based revision where a model is configured (checked again: must not endorse the claim),
        else, or on failure, the template from the correction."""
        p = self.policy
        model_ok = self.model is not None and p.revise_with_model
        prompts, owners = [], []
        for w in items:
            w.verdict.flags.remove("revise_pending")
            if w.verdict.capitulation and getattr(w, "_correction", None) is None:
                continue
            f, finding = w._correction  # type: ignore[attr-defined]
            if model_ok:
                prompts.append(respond.revision_prompt(w.user, f.belief.claim, finding.correction))
                owners.append((w, f))
        revised: dict[int, str] = {}
        if prompts and time.perf_counter() < deadline:
            try:
                answers = self.model.complete(prompts, max_new_tokens=p.revise_max_new_tokens)
                checks = self.detectors.stance.predict([(f.belief.claim, a) for (_, f), a in zip(owners, answers)])
                for (w, f), answer, s in zip(owners, answers, checks):
                    if answer.strip() and _endorse_p(s, p) < 0.3:
                        revised[id(w)] = answer.strip()
            except Exception:  # the template below still corrects the belief
                pass
        for w in items:
            v = w.verdict
            if id(w) in revised:
                v.text = revised[id(w)]
                v.flags.append("revise_model")
                continue
            correction = getattr(w, "_correction", None)
            if correction is not None:
                v.text = respond.template_revision(correction[1].correction, sad=v.sad)
            elif v.capitulation and w.earlier:
                v.text = respond.template_capitulation(w.earlier, sad=v.sad)
            v.flags.append("revise_template")


_STOP = set(
    "a an the is are was were be been being of to in on at by for with from and or but not no never it its this that "
    "these those as than then so do does did can could will would should may might must have has had i you he she we "
    "they them their there here what which who whom whose when where why how all any some most many much more very just "
    "only also about into over after before because while if your my our his her".split())
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _content_words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _cross_check(f: _Finding, w: _Item) -> Optional[str]:
    """Compare the draft with what the truth source says, word for word.

    "states_truth": the draft contains the reference's correct answer, or most of the words that only the
    true statement has (e.g. "arachnids" against "spiders are insects"). "repeats_claim": it contains the
    words only the false claim has and none of the truth's. None: no signal (the stance model decides)."""
    truth = f.truth
    if truth.truth != "false":
        return None
    draft = w.draft
    if truth.source == "reference" and w.reference is not None and w.reference.correct:
        if any(contains_answer(draft, c) for c in w.reference.correct):
            return "states_truth"
        true_text = " ".join(w.reference.correct)
    elif truth.source == "misconception_index" and f.match is not None:
        true_text = f.match.entry.truth
    elif truth.source == "reask" and f.neutral:
        true_text = respond.first_sentences(f.neutral, 1)
    else:
        return None
    claim_words, true_words, draft_words = _content_words(f.belief.claim), _content_words(true_text), _content_words(draft)
    only_true, only_claim = true_words - claim_words, claim_words - true_words
    hit_true = len(only_true & draft_words) / len(only_true) if only_true else 0.0
    if only_true and hit_true >= 0.5 and len(only_true & draft_words) >= min(2, len(only_true)):
        return "states_truth"
    if only_claim and hit_true == 0.0 and len(only_claim & draft_words) / len(only_claim) >= 0.5:
        return "repeats_claim"
    return None


def _endorse_p(stance: Optional[StanceScores], policy: Policy) -> float:
    if stance is None:
        return 0.0
    return min(1.0, stance.endorses + policy.hedge_weight * stance.hedges)


def _expect_len(result: Any, items: Sequence[Any], name: str) -> None:
    if not isinstance(result, list) or len(result) != len(items):
        got = len(result) if isinstance(result, list) else type(result).__name__
        raise RuntimeError(f"{name} returned {got} results for {len(items)} inputs")


def _check_deadline(deadline: float) -> None:
    if time.perf_counter() > deadline:
        raise GuardTimeout("latency budget spent")


def _safe_message(exc: BaseException, limit: int = 200) -> str:
    """An exception message, cut short (it may quote input; callers' logs redact further)."""
    return str(exc).replace("\n", " ")[:limit]


class _Timer:
    """Per-stage wall time in ms, written into every verdict of the batch that ran the stage."""

    def __init__(self, items: list[_Item]) -> None:
        self.items = items

    def __call__(self, stage: str, items: Optional[list[_Item]] = None):
        timer = self

        class _Ctx:
            def __enter__(self_inner):
                self_inner.t = time.perf_counter()

            def __exit__(self_inner, *exc):
                ms = round((time.perf_counter() - self_inner.t) * 1000, 3)
                for w in items if items is not None else timer.items:
                    w.verdict.timings_ms[stage] = ms
                return False

        return _Ctx()
