"""What a verification run reports: one trace per path, the rounds, and what they cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from PIL import Image

from cotgen.generate.engine import PathKey


@dataclass
class PathTrace:
    """One candidate path: its judge scores at each checkpoint step and how it ended."""

    key: PathKey
    step_scores: list[float] = field(default_factory=list)
    """PRM: P(yes) of the prompt question on each step's preview. PARM: clarity at each step asked
    (the last step's image is the final one)."""
    clear_at: int | None = None
    """PARM: the checkpoint step (1-based; the last is the final image) at which the judge first
    called the image clear."""
    potential: float | None = None
    """PARM: P(yes) that the path can still satisfy the prompt, asked once at the first clear step."""
    pruned_at: int | None = None
    """The checkpoint step after which the path stopped being decoded, if it was pruned."""
    reason: str | None = None
    """Why the path was pruned or rejected (PARM: "no potential", or "never clear" at the end)."""
    final_score: float | None = None
    """P(yes) of the outcome question on the finished image (ORM, PARM's best-of-N′)."""
    selected: bool = False

    def hopeful(self, potential_threshold: float) -> bool:
        """PARM: not (yet) judged without potential."""
        return self.potential is None or self.potential >= potential_threshold

    def p_no(self) -> float:
        """PARM's fallback order when nothing survives: never-clear paths count as a certain "no"."""
        return 1.0 if self.potential is None else 1.0 - self.potential


@dataclass
class Costs:
    image_tokens: int = 0
    """Image tokens decoded over every path, pruned ones up to where they stopped."""
    judge_calls: int = 0
    """(image, question) pairs the judge answered, explanations included."""
    seconds: float = 0.0

    def add(self, other: Costs) -> None:
        self.image_tokens += other.image_tokens
        self.judge_calls += other.judge_calls
        self.seconds += other.seconds


@dataclass
class Round:
    """One generate-and-verify pass; PARM++ runs up to three after reflecting on the chosen image."""

    prompt: str
    """What the generator was given: the prompt, or with the `feedback` corrector the corrective prompt."""
    traces: list[PathTrace]
    chosen: int
    image: Image.Image
    costs: Costs
    aligned: float | None = None
    """PARM++: P(yes) that the chosen image matches the prompt, asked on reflection."""
    feedback: str | None = None
    """PARM++: what the judge says is wrong (its explanation without the "no"), when it said the
    image does not match."""
    images: dict[int, Image.Image] = field(default_factory=dict)
    """Every path decoded to the end, by trace index (the chosen one included, replayed or not)."""
    tokens: dict[int, list[int]] = field(default_factory=dict)
    """The image tokens (raster order) of each path in `images`: what a DPO pair trains on."""


@dataclass
class Selection:
    strategy: str
    rounds: list[Round]
    returned: int = 0
    """The round whose chosen image is returned: PARM++'s best-aligned round, else the only one."""

    @property
    def image(self) -> Image.Image:
        return self.rounds[self.returned].image

    @property
    def costs(self) -> Costs:
        total = Costs()
        for r in self.rounds:
            total.add(r.costs)
        return total

    def to_json(self) -> dict:
        """Everything but the images, for the trace file written beside them."""
        rounds = []
        for r in self.rounds:
            rounds.append(
                {
                    "generated_from": r.prompt,
                    "chosen": r.chosen,
                    "aligned": r.aligned,
                    "feedback": r.feedback,
                    "costs": asdict(r.costs),
                    "paths": [asdict(t) for t in r.traces],
                }
            )
        return {"strategy": self.strategy, "costs": asdict(self.costs), "returned_round": self.returned, "rounds": rounds}


def describe(selection: Selection) -> str:
    """The trace as a person reads it: what each path scored, which were pruned when, the reflection."""
    lines = [f"strategy {selection.strategy}"]
    for number, r in enumerate(selection.rounds, 1):
        returned = "  <- returned" if len(selection.rounds) > 1 and number - 1 == selection.returned else ""
        lines.append(f"round {number}: generated from {r.prompt!r}{returned}")
        for i, t in enumerate(r.traces):
            parts = [f"  path {i:>2} (sample {t.key.sample})"]
            if t.step_scores:
                parts.append("steps " + " ".join(f"{s:.2f}" for s in t.step_scores))
            if t.clear_at is not None:
                parts.append(f"clear at step {t.clear_at}, potential {t.potential:.2f}")
            if t.pruned_at is not None:
                parts.append(f"pruned after step {t.pruned_at} ({t.reason})")
            elif t.reason:
                parts.append(t.reason)
            if t.final_score is not None:
                parts.append(f"final {t.final_score:.2f}")
            lines.append(", ".join(parts) + ("  <- chosen" if t.selected else ""))
        if r.aligned is not None:
            lines.append(f"  reflection: P(aligned) {r.aligned:.2f}" + (f"; feedback: {r.feedback}" if r.feedback else ""))
    c = selection.costs
    lines.append(f"cost: {c.image_tokens} image tokens, {c.judge_calls} judge calls, {c.seconds:.1f} s")
    return "\n".join(lines)
