"""A census read on several views of one image, each class's facts those that most views count.

A census-copying judge (`ReadingMode.first_facts`) copies each class's count and colours from its
greedy census answer. With `ReadingMode.census_views` it answers the census on the image as it is
and on views that keep what the evaluator counts but move the objects across its patches (mirrored;
shifted by half an 8-px patch), and copies, per class, the facts of the first view whose count most
views read (a tie goes to the image as it is); previews are read as they are. Test-time augmentation
for a tiny judge whose counts might change with where an object's edges fall; on validation images it
does not pay, so the shipped judge reads once (bench/RESULTS.md, "A census read on several views").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from PIL import Image, ImageOps

from cotgen.world.vocab import BACKGROUND


def _shifted(dx: int, dy: int) -> Callable[[Image.Image], Image.Image]:
    def view(image: Image.Image) -> Image.Image:
        out = Image.new("RGB", image.size, BACKGROUND)
        out.paste(image, (dx, dy))
        return out

    return view


VIEWS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "as is": lambda image: image,
    "mirrored": ImageOps.mirror,
    "right 4 px": _shifted(4, 0),
    "down 4 px": _shifted(0, 4),
    "left 4 px": _shifted(-4, 0),
    "up 4 px": _shifted(0, -4),
    "right and down 4 px": _shifted(4, 4),
}
"""The views, in order: `census_views` = k takes the first k (an object at the edge may lose up to
4 px of itself to a shift)."""


def with_views(images: Sequence[Image.Image], finished: Sequence[bool], k: int) -> tuple[list[Image.Image], list[list[int]]]:
    """The images, then the other k − 1 views of each finished one (a preview is read as it is: its
    objects are yet to be drawn, and a shift would move the edge of what is drawn); and per image,
    where its views are in that list, itself first."""
    done = [i for i, f in enumerate(finished) if f] if k > 1 else []
    seen, where = list(images), [[i] for i in range(len(images))]
    for view in list(VIEWS.values())[1:k]:
        for i in done:
            where[i].append(len(seen))
            seen.append(view(images[i]))
    return seen, where


def voted_facts(per_view: Sequence[dict[str, str]]) -> dict[str, str]:
    """Per class any view names, the facts ("2, red, blue", "none") of the first view whose count
    ("2", "none") most views read; a view that does not name the class is left out of its vote."""
    voted = {}
    for cls in dict.fromkeys(cls for view in per_view for cls in view):
        counts = [view[cls].split(",")[0].strip() if cls in view else None for view in per_view]
        tally = Counter(count for count in counts if count is not None)
        first = counts[0] if counts[0] is not None else tally.most_common(1)[0][0]
        best = first if tally[first] == max(tally.values()) else tally.most_common(1)[0][0]
        voted[cls] = per_view[counts.index(best)][cls]
    return voted
