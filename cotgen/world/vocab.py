"""The shapes world's vocabulary: shape classes, colours, counts and their GenEval wording."""

SHAPES = ("circle", "square", "triangle", "diamond", "cross")

# Saturated colours far apart in RGB (closest pair, orange–yellow: 76) and far from the white canvas
# (≥ 250; yellow is darkened so that JPEG chroma subsampling cannot wash it out),
# so that a blurred, re-quantised object still reads as its colour. All are GenEval colour names.
PALETTE = {
    "red": (215, 25, 35),
    "orange": (245, 120, 0),
    "yellow": (235, 195, 0),
    "green": (30, 160, 60),
    "blue": (30, 90, 230),
    "purple": (140, 40, 190),
}
COLORS = tuple(PALETTE)
BACKGROUND = (255, 255, 255)

COUNTS = (2, 3, 4)  # GenEval's counting prompts ask for two to four objects
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}

# Object bounding boxes are squares whose side is this fraction of the canvas side.
MIN_SIZE_FRACTION = 0.28
MAX_SIZE_FRACTION = 0.40


def with_article(word: str) -> str:
    """GenEval's article rule: "an orange circle", "a square"."""
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def plural(name: str) -> str:
    """GenEval's plural rule: a trailing "s" takes "es" ("crosses"), anything else takes "s"."""
    return f"{name}es" if name.endswith("s") else f"{name}s"


def size_range(canvas: int) -> tuple[int, int]:
    """Smallest and largest object side, in pixels, on a canvas of side `canvas`."""
    return round(MIN_SIZE_FRACTION * canvas), round(MAX_SIZE_FRACTION * canvas)
