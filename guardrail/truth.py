"""Truth sources: one small protocol, tried in the order the user lists them.

A source gets the beliefs still undecided and returns, for each, a ``TruthResult`` with its evidence or
``None`` (it has nothing to say). Built in: the caller's ``reference``, the embedded
``misconception_index`` and the ``reask`` probe; any object with a ``name`` and a ``judge`` method is a
source too. Each source owns its matching and its side resolution. Nothing here decides an action: that
is ``guardrail.decide``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

from detectors.types import StanceScores

from guardrail import deadline, respond
from guardrail.misconceptions import IndexMatch, MisconceptionIndex
from guardrail.model import Messages, ModelClient
from guardrail.policy import Policy
from guardrail.reference import Reference, affirmative, contains_answer, negation_parity, norm_answer

TRUTH_VALUES = ("true", "false", "unknown")


@dataclass(frozen=True)
class TruthResult:
    """One source's decision about one claim, with the evidence it rests on.

    ``correction``: what to tell the user instead (for a false claim); ``statement``: the true statement
    or answer text the source relied on; ``answers``: known correct short answers; ``entry_id``: the
    misconception-index entry, when that source decided; ``claim``: the false claim in the source's own
    words (the entry's), which the guard reads beside ``statement`` when the user's claim is refuted."""

    truth: str  # "true" | "false" | "unknown"
    source: str
    confidence: float = 0.0
    correction: Optional[str] = None
    statement: Optional[str] = None
    answers: tuple[str, ...] = ()
    claim: Optional[str] = None
    entry_id: Optional[str] = None

    def __post_init__(self) -> None:
        if self.truth not in TRUTH_VALUES:
            raise ValueError(f"truth must be one of {TRUTH_VALUES}, got {self.truth!r}.")


UNKNOWN = TruthResult("unknown", "none", 0.0)


@dataclass(eq=False)
class TruthQuery:
    """A belief to judge: the claim as the user holds it, the question it answers, the caller's reference
    for this check only, and how strongly the draft goes along with it. ``endorsement`` is read only when
    a source sets ``needs_endorsement = True`` (one that costs a model call and skips claims the draft
    does not take up); otherwise the draft is read once, after the truth, and it is None here."""

    claim: str
    polarity: str = "affirms"
    question: Optional[str] = None
    reference: Optional[Reference] = None
    endorsement: Optional[float] = None


@dataclass
class TruthContext:
    """What a source may use: the stance detector, the policy, and the check's deadline."""

    stance: Any
    policy: Policy
    deadline: float = field(default_factory=lambda: time.monotonic() + 3600.0)  # time.monotonic() seconds

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@runtime_checkable
class TruthSource(Protocol):
    """``name`` and ``judge``; a source may also set ``needs_endorsement = True`` to be given how strongly
    the draft goes along with each claim (the guard then reads the draft before the truth, and again for
    each claim found false)."""

    name: str

    def judge(self, queries: Sequence[TruthQuery], ctx: TruthContext) -> list[Optional[TruthResult]]:
        """One result (or None: no opinion) per query, in order."""
        ...


class SourceError(RuntimeError):
    """A truth source broke its contract (wrong number or type of results)."""


def resolve(queries: Sequence[TruthQuery], sources: Sequence[TruthSource], ctx: TruthContext) -> list[TruthResult]:
    """Ask the sources in order; a claim is settled by the first source that says true or false."""
    results: list[TruthResult] = [UNKNOWN] * len(queries)
    pending = list(range(len(queries)))
    for source in sources:
        if not pending:
            break
        deadline.check(ctx.deadline, f"truth source {source.name!r}")
        got = source.judge([queries[i] for i in pending], ctx)
        if not isinstance(got, list) or len(got) != len(pending):
            n = len(got) if isinstance(got, list) else type(got).__name__
            raise SourceError(f"truth source {source.name!r} returned {n} results for {len(pending)} claims.")
        still = []
        for i, r in zip(pending, got):
            if r is not None and not isinstance(r, TruthResult):
                raise SourceError(f"truth source {source.name!r} returned a {type(r).__name__}, not a TruthResult or None.")
            if r is None or r.truth == "unknown":
                still.append(i)
            else:
                results[i] = r
        pending = still
    return results


# --------------------------------------------------------------------------------------- reference
class ReferenceSource:
    """The caller's reference: short answers are matched in the claim's words; a passage is read
    against the claim by the stance model."""

    name = "reference"

    def judge(self, queries: Sequence[TruthQuery], ctx: TruthContext) -> list[Optional[TruthResult]]:
        p = ctx.policy
        out: list[Optional[TruthResult]] = [None] * len(queries)
        passages = []
        for i, q in enumerate(queries):
            ref = q.reference
            if ref is None:
                continue
            if ref.correct or ref.incorrect:
                out[i] = judge_by_answers(q.claim, q.polarity, ref, p)
            if (out[i] is None or out[i].truth == "unknown") and ref.context:
                passages.append(i)
        if passages:
            scores = ctx.stance.predict([(queries[i].claim, queries[i].reference.context) for i in passages])
            for i, s in zip(passages, scores):
                truth = passage_truth(s, p)
                if truth is not None:
                    context = queries[i].reference.context
                    out[i] = TruthResult(truth, self.name, float(max(s.endorses, s.corrects)),
                                         correction=respond.first_sentences(context, 2), statement=context)
        return out


def passage_truth(s: StanceScores, policy: Policy) -> Optional[str]:
    """What a reference passage says of a claim, from the stance model's reading of the passage as a reply to
    it. A passage that agrees only weakly (below ``reference_true_min``) is taken to question the claim: the
    judge misreads some contradictions as agreement ("Paying in full is good for your score." against "paying
    my card off in full every month is bad for my credit"), and the caller passed the passage as the truth."""
    if s.label not in ("endorses", "corrects") or max(s.endorses, s.corrects) < policy.reference_context_min:
        return None
    if s.label == "corrects":
        return "false"
    return "true" if s.endorses >= policy.threshold("reference_true_min") else "false"


def judge_by_answers(claim: str, polarity: str, reference: Reference, policy: Policy) -> Optional[TruthResult]:
    """Does the claim give a correct answer, a known wrong one, or some other answer?"""
    if not reference.correct and not reference.incorrect:
        return None
    bare = norm_answer(claim)
    for answer in reference.correct + reference.incorrect:  # an answer may itself say "no" ("it has no name")
        a = norm_answer(answer)
        if a:
            bare = f" {bare} ".replace(f" {a} ", " ").strip()
    denies = polarity == "denies" or negation_parity(bare) == 1
    text = affirmative(claim) if denies else claim
    has_correct = any(contains_answer(text, c) for c in reference.correct)
    has_incorrect = any(contains_answer(text, c) for c in reference.incorrect)
    if has_correct != has_incorrect:
        truth, conf = ("true" if has_correct else "false"), policy.reference_match_confidence
    elif reference.correct and not has_correct and not has_incorrect:
        truth, conf = "false", policy.reference_other_confidence  # an answer other than the known one
    else:
        return None
    if denies:
        truth = "false" if truth == "true" else "true"
    return TruthResult(truth, "reference", conf, correction=reference.correction(),
                       statement=" ".join(reference.correct) or None, answers=tuple(reference.correct))


# --------------------------------------------------------------------------------------- the index
class IndexSource:
    """The misconception index as a truth source. Embeddings pick the entry and, when its two sides are
    far apart, the side; on a close call the words only one side has decide, then the stance model reads
    the entry's true statement against the claim."""

    name = "misconception_index"

    def __init__(self, index: MisconceptionIndex) -> None:
        self.index = index

    def judge(self, queries: Sequence[TruthQuery], ctx: TruthContext) -> list[Optional[TruthResult]]:
        matches = self.index.lookup([q.claim for q in queries], [q.polarity for q in queries])
        out: list[Optional[TruthResult]] = [None] * len(queries)
        judged, leans = self._sides_by_judge(queries, matches, ctx)
        close = []
        for i, (q, m) in enumerate(zip(queries, matches)):
            if m is None:
                continue
            side = judged.get(i) or (m.truth if m.margin >= ctx.policy.index_side_margin else _side_by_words(q.claim, m))
            if i not in judged and side in ("true", "false") and leans.get(i, side) != side:
                # embeddings and shared words cannot tell "the largest ocean is the Atlantic" from the entry's
                # "the Pacific is the largest, far bigger than the Atlantic"; the judge, short of sure, can lean
                side = leans[i]
            if side in ("true", "false"):
                out[i] = self._result(side, m)
            else:
                close.append(i)
        if close:
            scores = ctx.stance.predict([(queries[i].claim, matches[i].entry.truth) for i in close])
            for i, s in zip(close, scores):
                side = _side_by_stance(s, ctx.policy.side_stance_min) or matches[i].truth
                if side in ("true", "false"):
                    out[i] = self._result(side, matches[i])
        return out

    @staticmethod
    def _sides_by_judge(queries: Sequence[TruthQuery], matches: Sequence[Optional[IndexMatch]],
                        ctx: TruthContext) -> tuple[dict[int, str], dict[int, str]]:
        """An answer judge reads the claim as an answer with the entry's two sides as the choices: a claim
        and its negation embed alike, and "the largest ocean is the Atlantic" sits near the entry's true
        side. It reads each claim twice, with the two sides in either slot, and averages: read once, the
        slot the entry's truth sat in leaned the judge toward it (a user's "goldfish only remember things
        for 3 seconds" read as the true side), and on the index dev set, with judge run G, the two readings
        caught 15 of 41 sycophantic drafts where one caught 8, with the same 3 false flags of 64. A judge whose
        exchange is exact (``exchange_symmetric``: no offset between its two answers) is read once, the
        second reading being the first exchanged.
        Returns (the sides read at ``index_side_judge_min``, the side each claim leans to at any score)."""
        if not getattr(ctx.stance, "reads_truth", False):
            return {}, {}
        read = [i for i, m in enumerate(matches) if m is not None]
        if not read:
            return {}, {}
        pairs = [(matches[i].entry.claim, queries[i].claim, None, matches[i].entry.truth) for i in read]
        if getattr(ctx.stance, "exchange_symmetric", False):  # the second reading would be the first, exchanged
            scores = ctx.stance.predict(pairs)
            swapped = [StanceScores(endorses=s.corrects, corrects=s.endorses, hedges=s.hedges, ignores=s.ignores) for s in scores]
        else:
            scores = ctx.stance.predict(pairs + [(matches[i].entry.truth, queries[i].claim, None, matches[i].entry.claim)
                                                 for i in read])
            scores, swapped = scores[: len(read)], scores[len(read):]
        minimum = ctx.policy.threshold("index_side_judge_min")
        sides, leans = {}, {}
        for i, a, b in zip(read, scores, swapped):
            false, true = (a.endorses + b.corrects) / 2, (a.corrects + b.endorses) / 2
            if false != true:
                leans[i] = "false" if false > true else "true"
            if false >= minimum and false > true:
                sides[i] = "false"
            elif true >= minimum and true > false:
                sides[i] = "true"
        return sides, leans

    def judge_sentences(self, candidates: Sequence[Sequence[str]], ctx: TruthContext,
                        vectors: Sequence[Sequence[Any]] | None = None) -> list[Optional[tuple[int, TruthResult]]]:
        """Per message whose stated beliefs no source decided: its candidates (the claims extracted from it
        and its sentences) are looked up at ``index_message_min_similarity``, below the index's own
        threshold, and the nearest entry is taken only where the answer judge reads which side of it the
        candidate asserts: the extractor misses beliefs stated in plans and asides, and a paraphrase
        embeds further from an entry than a restatement. Returns (the candidate's position, the result)
        or None per message. ``vectors``: per candidate, its vector where known (a sentence pooled from
        the message's pass) or None."""
        out: list[Optional[tuple[int, TruthResult]]] = [None] * len(candidates)
        if not getattr(ctx.stance, "reads_truth", False):
            return out
        flat = [(k, n, text) for k, texts in enumerate(candidates) for n, text in enumerate(texts) if text.strip()]
        if not flat:
            return out
        known = [vectors[k][n] if vectors is not None else None for k, n, _ in flat]
        matches = self.index.lookup([t for _, _, t in flat], min_similarity=ctx.policy.index_message_min_similarity,
                                    vectors=known)
        best: dict[int, tuple[int, str, IndexMatch]] = {}
        for (k, n, text), m in zip(flat, matches):
            if m is not None and (k not in best or m.similarity > best[k][2].similarity):
                best[k] = (n, text, m)
        keys = sorted(best)
        queries = [TruthQuery(claim=best[k][1]) for k in keys]
        sides, _ = self._sides_by_judge(queries, [best[k][2] for k in keys], ctx)
        for j, k in enumerate(keys):
            if j in sides:
                out[k] = (best[k][0], self._result(sides[j], best[k][2]))
        return out

    def _result(self, truth: str, m: IndexMatch) -> TruthResult:
        confidence = m.confidence if truth == m.truth and m.confidence else round(m.similarity, 4)
        return TruthResult(truth, self.name, confidence, correction=m.entry.correction(), statement=m.entry.truth,
                           entry_id=m.entry.id, claim=m.entry.claim)


def _side_by_words(claim: str, m: IndexMatch) -> Optional[str]:
    """Which side's own words does the claim use (a claim and its negation embed alike)?"""
    claim_words = content_words(claim)
    false_words, true_words = content_words(m.entry.claim), content_words(m.entry.truth)
    hits_false = len(claim_words & (false_words - true_words))
    hits_true = len(claim_words & (true_words - false_words))
    if hits_true == hits_false:
        return None
    truth = "true" if hits_true > hits_false else "false"
    if negation_parity(claim) != negation_parity(m.entry.truth if truth == "true" else m.entry.claim):
        truth = "false" if truth == "true" else "true"
    return truth


def _side_by_stance(s: StanceScores, minimum: float) -> Optional[str]:
    """The entry's true statement corrects the claim (it is false) or endorses it (it is true)."""
    if s.corrects >= minimum and s.corrects > s.endorses:
        return "false"
    if s.endorses >= minimum and s.endorses > s.corrects:
        return "true"
    return None


# --------------------------------------------------------------------------------------- re-ask probe
class ReaskSource:
    """Ask the model the question again without the framing and the belief (the paper's sycophantic flip,
    applied at run time): a draft that endorses what the neutral answer rejects went along with the user."""

    name = "reask"
    needs_endorsement = True

    def __init__(self, model: ModelClient) -> None:
        self.model = model

    def judge(self, queries: Sequence[TruthQuery], ctx: TruthContext) -> list[Optional[TruthResult]]:
        p = ctx.policy
        out: list[Optional[TruthResult]] = [None] * len(queries)
        asked = [i for i, q in enumerate(queries) if (q.endorsement or 0.0) >= p.reask_min_endorsement]
        if not asked or not p.use_reask:
            return out
        probes = [neutral_question(queries[i].claim, queries[i].question) for i in asked]
        answers = self.model.complete([m for m, _ in probes], max_new_tokens=p.reask_max_new_tokens,
                                      timeout_s=max(0.05, ctx.seconds_left()))
        pairs, owners = [], []
        for i, (_, is_tf), answer in zip(asked, probes, answers):
            q = queries[i]
            if is_tf:
                verdict = parse_true_false(answer)
                if verdict is not None:
                    out[i] = self._result("true" if verdict else "false", p.reask_confidence, answer)
                continue
            by_words = _reask_by_words(q, answer)
            if by_words is not None:
                out[i] = self._result(by_words, p.reask_confidence, answer)
                continue
            pairs.append((q.claim, answer, q.question) if q.question else (q.claim, answer))
            owners.append((i, answer))
        scores = ctx.stance.predict(pairs) if pairs else []
        for (i, answer), s in zip(owners, scores):
            own = content_words(queries[i].claim) - content_words(queries[i].question or "")
            if own and own <= content_words(answer) and s.label != "corrects":
                out[i] = self._result("true", p.reask_confidence, answer)
            elif s.label == "corrects" and s.corrects >= p.reask_corrects_min:
                out[i] = self._result("false", float(s.corrects), answer)
            elif s.label == "endorses" and s.endorses >= p.reask_corrects_min:
                out[i] = self._result("true", float(s.endorses), answer)
        return out

    def _result(self, truth: str, confidence: float, answer: str) -> TruthResult:
        return TruthResult(truth, self.name, confidence,
                           correction=respond.first_sentences(answer, 2) if truth == "false" else None,
                           statement=respond.first_sentences(answer, 1))


def _reask_by_words(q: TruthQuery, answer: str) -> Optional[str]:
    """A neutral answer that never names the user's answer rejects it; one that names all of it (and is
    not read as correcting it) confirms it."""
    own = content_words(q.claim) - content_words(q.question or "")
    said = content_words(answer)
    if own and not (own & said):
        return "false"
    return None


def neutral_question(claim: str, question: str | None) -> tuple[Messages, bool]:
    """The question asked again without the emotional framing and without the user's belief.

    Returns the messages and whether it is a true/false probe of the bare claim (no question known).
    """
    system = "Answer factual questions accurately and briefly."
    if question and question.strip():
        return [{"role": "system", "content": system}, {"role": "user", "content": question.strip()}], False
    prompt = f"Is this statement true or false? \"{claim.strip()}\" Reply with True or False, then one short sentence why."
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}], True


_TF = re.compile(r"^\W*(true|false|yes|no|correct|incorrect)\b", re.I)


def parse_true_false(answer: str) -> Optional[bool]:
    m = _TF.match(answer or "")
    if not m:
        return None
    return m.group(1).lower() in ("true", "yes", "correct")


# --------------------------------------------------------------------------------------- words
_STOP = frozenset(
    "a an the is are was were be been being of to in on at by for with from and or but not no never it its this that "
    "these those as than then so do does did can could will would should may might must have has had i you he she we "
    "they them their there here what which who whom whose when where why how all any some most many much more very just "
    "only also about into over after before because while if your my our his her".split())
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def content_words(text: str) -> set[str]:
    """Lower-cased words less stop words: the unit of the word checks that the answer judge will replace."""
    return {w for w in _WORDS.findall(text.lower()) if w not in _STOP and len(w) > 1}


def build_sources(names: Optional[Sequence[Any]], policy: Policy, model: Optional[ModelClient]) -> list[TruthSource]:
    """The sources in the user's order: names ("reference", "misconception_index", "reask"), a
    ``MisconceptionIndex``, or any object with ``name`` and ``judge``."""
    out: list[TruthSource] = []
    for source in (["reference", "misconception_index", "reask"] if names is None else list(names)):
        if source == "reference":
            out.append(ReferenceSource())
        elif source == "misconception_index":
            out.append(IndexSource(MisconceptionIndex.default(min_similarity=policy.index_min_similarity,
                                                              margin=policy.index_margin)))
        elif source == "reask":
            if model is not None:  # without a model there is nobody to ask
                out.append(ReaskSource(model))
        elif isinstance(source, MisconceptionIndex):
            out.append(IndexSource(source))
        elif isinstance(source, TruthSource) and not isinstance(source, str):
            out.append(source)
        else:
            raise TypeError(
                f"unknown truth source {source!r}: use 'reference', 'misconception_index', 'reask', a "
                "MisconceptionIndex, or an object with a `name` and a `judge(queries, ctx)` method.")
    names_seen = [s.name for s in out]
    if len(set(names_seen)) != len(names_seen):
        raise TypeError(f"truth sources must have distinct names, got {names_seen}.")
    return out
