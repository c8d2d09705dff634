"""GenEval-style scoring. `exact`: the shapes world's evaluator, exact by construction."""

from cotgen.evaluate.exact import Evaluation, evaluate_image
from cotgen.evaluate.reader import Reading, read_scene
from cotgen.evaluate.rules import Verdict, check
from cotgen.evaluate.summary import Summary, TagScore, format_table, summarize

__all__ = [
    "Evaluation", "Reading", "Summary", "TagScore", "Verdict",
    "check", "evaluate_image", "format_table", "read_scene", "summarize",
]  # fmt: skip
