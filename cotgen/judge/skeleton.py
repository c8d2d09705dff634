"""The skeleton of a reading: the words the question fixes, forced, so the judge writes only what it sees.

A reading names the classes the question names and, for a position question, the relation between
them: "square: 1, red; circle: 1, blue; circle is not left of square. answer: no". Those words come
from the question, yet a tiny judge writes them from what its training prompts paired: for "a photo of
two circles", when "two" came only with other classes in training, it writes "square: 2"
(bench/RESULTS.md, "A compositional validation split"). A judge whose reading mode lists its
`subjects` (and `relations`) has those words forced while it writes: each class's part opens with the
class, the separators follow the skeleton, and a relation holds or not ("not" is its only choice). It
writes the facts alone: each class's count and colours, and whether the relation holds.

The order is the evaluator's: the classes as the question first names them, except that a position
question ("a circle left of a square") reads its reference object first, as GenEval's metadata lists it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

if TYPE_CHECKING:  # cotgen.judge.reading forces skeletons as it writes
    from cotgen.judge.reading import ReadingMode

SEPARATORS = (";", ".")
"""What ends a class's facts: the next part (";") or the reading (".")."""


@dataclass(frozen=True)
class Skeleton:
    """The fixed words of one question's reading."""

    classes: tuple[str, ...]
    """The classes, in the reading's order."""
    relation: tuple[str, str, str] | None = None
    """(subject, relation, reference) for a position question."""
    facts: tuple[str | None, ...] = ()
    """Each class's facts where they are known already ("2, red, blue", "none"; None: the judge writes
    them), as copied from the judge's own census (`with_facts`)."""
    holds: bool | None = None
    """Whether the relation holds where that is known already (`cotgen.judge.where`: where the judge's
    head finds the classes), forced; None: the judge chooses."""


def census_facts(census: str, subjects: Sequence[str]) -> dict[str, str]:
    """Each subject's facts in a census answer: "circle: 2, red, blue; square: none; …." →
    {"circle": "2, red, blue", "square": "none"}; parts that are not a subject's are left out."""
    found = {}
    for part in census.strip().rstrip(".").split(";"):
        cls, colon, facts = part.strip().partition(":")
        if colon and cls in subjects and facts.strip() and cls not in found:
            found[cls] = facts.strip()
    return found


def with_facts(sk: Skeleton | None, facts: dict[str, str]) -> Skeleton | None:
    """The skeleton with each class's facts copied from `facts` (a class it lacks is left to the judge)."""
    return None if sk is None else replace(sk, facts=tuple(facts.get(cls) for cls in sk.classes))


def with_counts(sk: Skeleton, counts: dict[str, int]) -> Skeleton:
    """The skeleton with each class's count as `counts` gives it (`cotgen.judge.count_head`): a class
    counted none reads "none"; otherwise the count leads the colours already known ("3, red, blue";
    the evaluator's rules pad missing colours as unknown and drop extra ones)."""
    facts = sk.facts or (None,) * len(sk.classes)
    return replace(sk, facts=tuple(counted(f, counts[c]) if c in counts else f for f, c in zip(facts, sk.classes)))


def counted(facts: str | None, n: int) -> str:
    if n == 0:
        return "none"
    colors = [] if facts is None or facts == "none" else [w.strip() for w in facts.split(",")[1:]]
    return ", ".join([str(n), *colors])


def skeleton(question: str, mode: ReadingMode) -> Skeleton | None:
    """The skeleton of the reading for `question`, or None when it names none of the mode's subjects
    (the judge then writes freely)."""
    if not mode.subjects:
        return None
    words = "|".join(map(re.escape, mode.subjects))
    named = [(m.start(), m.group(1)) for m in re.finditer(rf"\b({words})(?:es|s)?\b", question)]
    classes = tuple(dict.fromkeys(cls for _, cls in named))
    if not classes:
        return None
    if len(classes) == 2 and mode.relations:
        (start_a, a), (start_b, b) = named[0], next(n for n in named if n[1] != named[0][1])
        between = question[start_a:start_b]
        relation = next((r for r in mode.relations if re.search(rf"\b{re.escape(r)}\b", between)), None)
        if relation is not None:
            return Skeleton((b, a), (a, relation, b))
    return Skeleton(classes)


@dataclass(frozen=True)
class _Free:
    """A class's facts: anything up to a separator."""


Part = tuple[int, ...] | tuple[tuple[int, ...], ...] | _Free
"""A forced run of tokens, a choice between runs (a tuple of tuples), or free facts."""


def _parts(sk: Skeleton, marker: str, facts: list[str], encode: Callable[[str], tuple[int, ...]]) -> Iterator[Part]:
    """The skeleton's parts in order; whether the relation is stated depends on the facts written so
    far (`facts`, filled by the caller as it walks), as the evaluator states it only between classes found."""
    for k, cls in enumerate(sk.classes):
        opening = f"{cls}:" if k == 0 else f"; {cls}:"
        known = sk.facts[k] if sk.facts else None
        if known is None:
            yield encode(opening)
            yield _Free()
        else:
            facts.append(known)
            yield encode(f"{opening} {known}")
    if sk.relation is not None and "none" not in facts:
        subject, relation, reference = sk.relation
        yield encode(f"; {subject} is")
        holding, failing = encode(f" {relation} {reference}"), encode(f" not {relation} {reference}")
        yield (failing, holding) if sk.holds is None else holding if sk.holds else failing
    yield encode(f". {marker}")


class SkeletonForcing(LogitsProcessor):
    """Forces each row's skeleton (None: that row writes freely) into greedy or sampled generation. A
    row whose first token would be a direct answer ("yes"/"no": clarity, potential) is left alone.
    Forced tokens keep all their probability, so a reading's probability is that of what it chose."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        mode: ReadingMode,
        skeletons: Sequence[Skeleton | None],
        start: int,
        direct: set[int],
    ):
        self.tokenizer, self.mode, self.skeletons, self.start, self.direct = tokenizer, mode, skeletons, start, direct
        self._encoded: dict[str, tuple[int, ...]] = {}
        self.separators = tuple(self._encode(s)[0] for s in SEPARATORS)

    def _encode(self, text: str) -> tuple[int, ...]:
        # every step re-walks each row's skeleton: its parts are encoded once per generate call
        if text not in self._encoded:
            self._encoded[text] = tuple(self.tokenizer.encode(text, add_special_tokens=False))
        return self._encoded[text]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        for row, (written, sk) in enumerate(zip(input_ids[:, self.start :].tolist(), self.skeletons)):
            if sk is None or (written and written[0] in self.direct):
                continue
            if not written and scores[row].argmax().item() in self.direct:
                continue
            allowed = self._allowed(sk, written)
            if allowed is None:
                continue
            if isinstance(allowed, int):  # free facts, ended with this separator: both separators' mass
                both = torch.tensor(self.separators, device=scores.device)
                ended = scores[row, both].logsumexp(0)
                scores[row, both] = -torch.inf
                scores[row, allowed] = ended
                continue
            keep = torch.full_like(scores[row], -torch.inf)
            keep[list(allowed)] = scores[row, list(allowed)]
            scores[row] = keep
        return scores

    def _allowed(self, sk: Skeleton, written: list[int]) -> set[int] | int | None:
        """The tokens the skeleton allows next (a set), the separator free facts end with (an int), or
        None when the skeleton is done (the answer) or the written text left it."""
        facts: list[str] = []
        parts = _parts(sk, self.mode.marker, facts, self._encode)
        at = 0
        for part in parts:
            if isinstance(part, _Free):
                end = next((i for i in range(at, len(written)) if written[i] in self.separators), None)
                facts.append(self.tokenizer.decode(written[at:end]).strip())
                if end is None:  # the facts go on; were they to end now, the next forced run opens with this
                    return next(parts)[0]
                at = end
                continue
            runs = part if isinstance(part[0], tuple) else (part,)
            done = [run for run in runs if tuple(written[at : at + len(run)]) == run]
            if done:
                at += len(done[0])
                continue
            left = written[at:]
            nexts = {run[len(left)] for run in runs if len(run) > len(left) and tuple(run[: len(left)]) == tuple(left)}
            return nexts or None
        return None
