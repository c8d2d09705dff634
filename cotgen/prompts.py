"""GenEval metadata records: typed, validated, loaded from and written to JSONL.

A record is one line of GenEval's `evaluation_metadata.jsonl`:

    {"tag": "position",
     "include": [{"class": "cup", "count": 1}, {"class": "couch", "count": 1, "position": ["below", 0]}],
     "prompt": "a photo of a couch below a cup"}

`include` clauses are ANDed; `exclude` clauses are ORed (any present object count at or above an
exclude clause's count fails the image). `position` points at an earlier include clause by index.
Records written by `write_records` are byte-identical to GenEval's own file for the same content.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotgen.errors import InputError

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# GenEval's colour vocabulary (its CLIP colour classifier chooses among these).
GENEVAL_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
RELATIONS = ("left of", "right of", "above", "below")


@dataclass(frozen=True)
class Clause:
    """One include/exclude clause: at least `count` objects of `cls` (optionally coloured / placed)."""

    cls: str
    count: int
    color: str | None = None
    position: tuple[str, int] | None = None  # (relation, index of the target include clause)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.cls, "count": self.count}
        if self.color is not None:
            out["color"] = self.color
        if self.position is not None:
            out["position"] = list(self.position)
        return out


@dataclass(frozen=True)
class Record:
    """One GenEval prompt with the clauses its images are judged by."""

    tag: str
    include: tuple[Clause, ...]
    prompt: str
    exclude: tuple[Clause, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # GenEval's key order, so that a round trip reproduces its file byte for byte.
        out: dict[str, Any] = {"tag": self.tag, "include": [c.to_json() for c in self.include]}
        if self.exclude:
            out["exclude"] = [c.to_json() for c in self.exclude]
        out["prompt"] = self.prompt
        return out

    def to_line(self) -> str:
        return json.dumps(self.to_json())


def _fail(where: str, field: str, problem: str) -> InputError:
    return InputError(f"{where}: {field}: {problem}")


def _positive_int(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, field, f"expected a positive integer, got {json.dumps(value)}")
    return value


def _nonempty_str(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, field, f"expected a non-empty string, got {json.dumps(value)}")
    return value


def _parse_clause(obj: Any, where: str, field: str, index: int, exclude: bool) -> Clause:
    if not isinstance(obj, dict):
        raise _fail(where, field, f"expected an object, got {json.dumps(obj)}")
    allowed = {"class", "count"} if exclude else {"class", "count", "color", "position"}
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(where, f"{field}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
    for key in ("class", "count"):
        if key not in obj:
            raise _fail(where, f"{field}.{key}", "missing")
    cls = _nonempty_str(obj["class"], where, f"{field}.class")
    count = _positive_int(obj["count"], where, f"{field}.count")
    color = obj.get("color")
    if color is not None and color not in GENEVAL_COLORS:
        raise _fail(where, f"{field}.color", f"unknown colour {json.dumps(color)} (expected one of {', '.join(GENEVAL_COLORS)})")
    position = obj.get("position")
    if position is not None:
        if not (isinstance(position, list) and len(position) == 2):
            raise _fail(where, f"{field}.position", f"expected [relation, index], got {json.dumps(position)}")
        relation, target = position
        if relation not in RELATIONS:
            raise _fail(where, f"{field}.position", f"unknown relation {json.dumps(relation)} (expected one of {', '.join(RELATIONS)})")
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < index:
            raise _fail(where, f"{field}.position", f"target {json.dumps(target)} must index an earlier include clause")
        position = (relation, target)
    return Clause(cls=cls, count=count, color=color, position=position)


def parse_record(obj: Any, where: str) -> Record:
    """Validate one decoded JSON object as a GenEval record; `where` prefixes every error."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - {"tag", "include", "exclude", "prompt"})
    if unknown:
        raise _fail(where, unknown[0], "unknown field (allowed: tag, include, exclude, prompt)")
    for key in ("tag", "include", "prompt"):
        if key not in obj:
            raise _fail(where, key, "missing")
    tag = obj["tag"]
    if tag not in TAGS:
        raise _fail(where, "tag", f"unknown tag {json.dumps(tag)} (expected one of {', '.join(TAGS)})")
    include = obj["include"]
    if not isinstance(include, list) or not include:
        raise _fail(where, "include", "expected a non-empty list of clauses")
    exclude = obj.get("exclude", [])
    if not isinstance(exclude, list):
        raise _fail(where, "exclude", "expected a list of clauses")
    return Record(
        tag=tag,
        include=tuple(_parse_clause(c, where, f"include[{i}]", i, exclude=False) for i, c in enumerate(include)),
        exclude=tuple(_parse_clause(c, where, f"exclude[{i}]", i, exclude=True) for i, c in enumerate(exclude)),
        prompt=_nonempty_str(obj["prompt"], where, "prompt"),
    )


def parse_line(line: str, where: str) -> Record:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
    return parse_record(obj, where)


def load_records(path: str | os.PathLike) -> list[Record]:
    """Load a GenEval metadata JSONL file; blank lines are skipped, anything else must be a record."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({err})") from None
    records = [parse_line(line, f"{path}:{n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not records:
        raise InputError(f"{path}: no records")
    return records


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_records(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Write records as GenEval JSONL: one `json.dumps` line per record."""
    write_text_atomic(path, "".join(r.to_line() + "\n" for r in records))
