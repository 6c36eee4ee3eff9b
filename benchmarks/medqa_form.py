"""MedQA in the paper's form (``../shared/data/paper/eval_data/medqa.md``): the patient becomes the user's
relative and no options are shown.

The paper rewrote each USMLE stem so that a worried user asks about a family member:

- ``A 21-year-old college student comes to ...`` -> ``My brother, 21, comes to ...``;
- ``A 58-year-old woman presents to ...`` -> ``My wife, 58, to ...`` (``presents``/``is``/``was`` dropped);
- ``Which of the following ...`` -> ``what ...`` (lower-case ``w``, as in every example);
- a stem with no patient at its start stays as it is.

The rewrite is done here by rules (plain string work, no backtracking patterns) that rebuild the
verbatim examples of ``medqa.md`` byte for byte. Which relative: by the patient's sex (the noun, else the
pronouns in the stem) and age: son/daughter under 18, brother/sister under 36, husband/wife under 65,
father/mother from 65 (the examples show brother 21, wife 50 and wife 58; the cut-offs are ours).
"""

from __future__ import annotations

import re

_FEMALE_NOUNS = {"woman", "girl", "female", "lady", "mother", "wife", "primigravida", "multigravida"}
_MALE_NOUNS = {"man", "boy", "male", "gentleman", "father", "husband"}
# The first of these after "N-year-old" ends the patient's noun phrase.
_VERBS = {"is", "was", "presents", "presented", "comes", "came", "has", "had", "visits", "returns", "develops",
          "undergoes", "reports", "complains", "calls", "arrives", "seeks", "consults", "goes", "brings", "sees",
          "recently", "with", "who", "at", "in", "from", "of", "on", "and", "whose"}
# Verbs the paper's rewrite drops after the relative ("My wife, 58, to the emergency department").
_DROPPED = {"is", "was", "presents", "presented"}
_AGE = re.compile(r"(\d+)-(year|month|week|day)-old")
_HE = re.compile(r"\b(?:he|his|him)\b", re.I)
_SHE = re.compile(r"\b(?:she|her|hers)\b", re.I)
_WHICH = re.compile(r"\b[Ww]hich of the following\b")

_RELATIVES = {"F": ("daughter", "sister", "wife", "mother"), "M": ("son", "brother", "husband", "father")}


def relative_for(sex: str, years: float) -> str:
    """The relative the paper's rewrite would name for a patient of this sex and age."""
    child, sibling, spouse, parent = _RELATIVES[sex]
    if years < 18:
        return child
    if years < 36:
        return sibling
    if years < 65:
        return spouse
    return parent


def _sex(noun_phrase: list[str], stem: str) -> str | None:
    words = {w.lower() for w in noun_phrase}
    if words & _FEMALE_NOUNS:
        return "F"
    if words & _MALE_NOUNS:
        return "M"
    he, she = len(_HE.findall(stem)), len(_SHE.findall(stem))
    if he != she:
        return "M" if he > she else "F"
    return None


def _patient_to_relative(stem: str) -> str:
    """``A 21-year-old college student comes ...`` -> ``My brother, 21, comes ...``; other stems unchanged."""
    first, _, rest = stem.partition(" ")
    if first not in ("A", "An") or not rest:
        return stem
    age_word, _, rest = rest.partition(" ")
    m = _AGE.fullmatch(age_word)
    if not m:
        return stem
    tokens = rest.split(" ")
    end = None
    for k, tok in enumerate(tokens[:7]):
        if tok in _VERBS:
            end = k
            break
        if tok.lower() in _FEMALE_NOUNS or tok.lower() in _MALE_NOUNS:  # "a 17-year-old female eats ..."
            end = k + 1
            break
    if end is None:
        return stem
    noun_phrase, tail = tokens[:end], tokens[end:]
    sex = _sex(noun_phrase, stem)
    if sex is None:
        return stem
    n, unit = int(m.group(1)), m.group(2)
    years = n if unit == "year" else n / {"month": 12, "week": 52, "day": 365}[unit]
    age = str(n) if unit == "year" else f"{n} {unit}{'s' if n != 1 else ''}"
    if tail and tail[0] in _DROPPED:
        tail = tail[1:]
    return f"My {relative_for(sex, years)}, {age}, " + " ".join(tail)


def rewrite_question(stem: str) -> str:
    """The paper's first-person MedQA question: the patient as the user's relative, "what" for
    "Which of the following", no options."""
    return _WHICH.sub("what", _patient_to_relative(stem.strip()))
