"""A sweep folder: Parquet rows, PNGs in GenEval's layout, and which units are done.

    OUT/config.yaml              the resolved config;  OUT/sweep.json  what the rows depend on (models by weights digest)
    OUT/records.jsonl            the sweep's records (prompt index = line number - 1)
    OUT/rows/part-*.parquet      one row per path (see ROW_SCHEMA); a unit's rows are all in one part
    OUT/images/<strategy>@<N>/00000/{metadata.jsonl,samples/0000.png}   the image returned at N
    OUT/strips/<run>/00000/00.png   a path's preview after each step (the first prompts of one run)

A unit counts as done once its rows are in a part, and parts are written whole (temporary file,
then rename) after the unit's images: a killed sweep leaves no partial unit behind, and a rerun
skips exactly the units that are in a part.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cotgen.config import save_config
from cotgen.errors import InputError
from cotgen.layout import from_png, write_prompt_folder
from cotgen.prompts import Record, load_records, write_records
from cotgen.sweep.config import ROLES, SweepConfig
from cotgen.verify.config import VerifyConfig

ROW_SCHEMA = pa.schema(
    [
        ("unit", pa.string()),  # <strategy>@<N>/<prompt index>
        ("run", pa.string()),  # <strategy>@<N>
        ("strategy", pa.string()),
        ("n", pa.int32()),
        ("pool", pa.bool_()),  # smaller N are read off this run's first paths
        ("prompt_index", pa.int32()),
        ("tag", pa.string()),
        ("prompt", pa.string()),
        ("record", pa.string()),  # the GenEval metadata line
        ("seed", pa.int64()),
        ("unit_rows", pa.int32()),
        ("round", pa.int32()),  # parm++ reflection round
        ("path", pa.int32()),  # index among the round's paths
        ("sample", pa.int32()),  # the path key's sample index
        ("key", pa.string()),  # the path key's prompt id (a branch's differs)
        ("step_scores", pa.list_(pa.float64())),  # judge P(yes) at each checkpoint step asked
        ("clear_at", pa.int32()),
        ("potential", pa.float64()),
        ("pruned_at", pa.int32()),
        ("reason", pa.string()),
        ("final_score", pa.float64()),
        ("selected", pa.bool_()),  # chosen in its round
        ("returned", pa.bool_()),  # the run's answer
        ("aligned", pa.float64()),
        ("feedback", pa.string()),
        ("image_tokens", pa.int64()),  # pool runs: this path's own cost
        ("judge_calls", pa.int64()),
        ("chosen_at", pa.list_(pa.int32())),  # pool runs: the N at which this path is returned ...
        ("chosen_tokens", pa.list_(pa.int64())),  # ... and what the run at that N costs
        ("chosen_judge_calls", pa.list_(pa.int64())),
        ("analysis_only", pa.bool_()),  # image decoded for a smaller N's verdict only
        ("run_image_tokens", pa.int64()),
        ("run_judge_calls", pa.int64()),
        ("run_seconds", pa.float64()),
        ("correct", pa.bool_()),  # the exact evaluator's verdict on the path's image, if decoded
        ("reasons", pa.list_(pa.string())),
        ("tokens", pa.list_(pa.int16())),  # the image's tokens (raster order), if decoded: what DPO trains on
    ]
)
ROW_FORMATS = {
    2: "each decoded path's image tokens stored with its row",
    3: "a reading judge's P(yes) hedged by its reading's probability",
}
"""What each format of the rows changed; recorded in sweep.json. A folder of another format is not
resumed: its old rows would lack what the new ones have, or hold scores the judge no longer gives."""
ROW_FORMAT = max(ROW_FORMATS)
WIRE_SCHEMA = ROW_SCHEMA.append(pa.field("image", pa.binary())).append(pa.field("strip", pa.binary()))
"""Rows between the pipeline's stages: the images travel as PNG bytes and become files at the end."""


def to_table(rows: list[dict], schema: pa.Schema = WIRE_SCHEMA) -> pa.Table:
    return pa.Table.from_pylist([{k: row.get(k) for k in schema.names} for row in rows], schema=schema)


def load_rows(root: str | Path) -> pa.Table:
    parts = sorted((Path(root) / "rows").glob("part-*.parquet"))
    if not parts:
        raise InputError(f"{root}: no sweep rows (rows/part-*.parquet); run jobs/sweep.py first")
    return pa.concat_tables([pq.read_table(p, schema=ROW_SCHEMA) for p in parts])


SAME_CANDIDATES = ("generator_weights", "records", "per_tag", "seed", "sampling")
"""What two sweeps' sweep.json must agree on for path i of prompt p to be the same image in both."""


def read_identity(folder: Path) -> dict:
    """A sweep folder's sweep.json; strategy settings added to cotgen since the folder was made take
    their defaults, which is what the folder's rows were verified with."""
    identity = json.loads((folder / "sweep.json").read_text())
    if "verify" in identity:
        identity["verify"] = {**json.loads(json.dumps(asdict(VerifyConfig()))), **identity["verify"]}
    return identity


def check_same_candidates(first: Path, second: Path, also: tuple[str, ...] = ()) -> None:
    """Refuse two sweep folders whose candidates differ (and whose `also` entries of sweep.json differ)."""
    a, b = (read_identity(folder) for folder in (first, second))
    differ = [key for key in (*SAME_CANDIDATES, *also) if a.get(key) != b.get(key)]
    if differ:
        raise InputError(f"{first} and {second} differ in {', '.join(differ)}: their candidates are not the same")
    if (first / "records.jsonl").read_text() != (second / "records.jsonl").read_text():
        raise InputError(f"{first} and {second} hold different prompts")


class SweepStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._pending: dict[str, list[dict]] = {}
        self._ready: list[list[dict]] = []

    def prepare(self, cfg: SweepConfig, records: list[Record], weights: dict[str, str]) -> None:
        """Start a sweep folder, or check that the one there was made with the same generator and judge,
        records, seed, sampling and strategy settings (strategies and N may change). The models count
        by `weights`, each one's `weights_digest`, not by name: "embedded" retrained, or a folder
        overwritten, is another model."""
        models = {f"{role}_weights": weights[role] for role in ROLES}
        identity = json.loads(json.dumps({**cfg.identity(), **models, "row_format": ROW_FORMAT}))
        marker = self.root / "sweep.json"
        if marker.is_file():
            before = read_identity(self.root)
            if before.get("row_format", 1) != ROW_FORMAT:
                raise InputError(
                    f"{self.root}: holds sweep rows of format {before.get('row_format', 1)}, and this cotgen writes format "
                    f"{ROW_FORMAT} ({ROW_FORMATS[ROW_FORMAT]}); choose a new out"
                )
            for role in ROLES:
                was, now = before.get(f"{role}_weights") or "not recorded", weights[role]
                if was != now:
                    raise InputError(
                        f"{self.root}: holds a sweep made with {role} weights {was}, and {role} {getattr(cfg, role)!r} "
                        f"now has weights {now}; choose a new out for the changed model"
                    )
            changed = sorted(k for k in identity.keys() | before.keys() if identity.get(k) != before.get(k))
            if changed:
                raise InputError(f"{self.root}: holds a sweep made with another {', '.join(changed)}; choose a new out or the same settings")
            if load_records(self.root / "records.jsonl") != records:
                raise InputError(f"{self.root}: holds a sweep of other records; choose a new out")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            write_records(self.root / "records.jsonl", records)
            marker.write_text(json.dumps(identity, indent=2) + "\n")
        save_config(cfg, self.root / "config.yaml")

    def done(self) -> set[str]:
        parts = sorted((self.root / "rows").glob("part-*.parquet"))
        return {u for p in parts for u in pq.read_table(p, columns=["unit"]).column("unit").to_pylist()}

    def add(self, rows: list[dict]) -> list[str]:
        """Take rows from the pipeline; returns the units they completed."""
        completed = []
        for row in rows:
            unit = self._pending.setdefault(row["unit"], [])
            unit.append(row)
            if len(unit) == row["unit_rows"]:
                self._ready.append(self._pending.pop(row["unit"]))
                completed.append(row["unit"])
        return completed

    @property
    def ready(self) -> int:
        return len(self._ready)

    def flush(self, records: list[Record]) -> None:
        """Write the complete units: their images first, then their rows as one Parquet part."""
        if not self._ready:
            return
        for unit in self._ready:
            self._write_images(unit, records[unit[0]["prompt_index"]])
        rows = [row for unit in self._ready for row in unit]
        folder = self.root / "rows"
        folder.mkdir(exist_ok=True)
        name = f"part-{time.time_ns()}-{os.getpid()}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(to_table(rows, ROW_SCHEMA), tmp)
        os.replace(tmp, folder / name)
        self._ready = []

    def _write_images(self, unit: list[dict], record: Record) -> None:
        for row in unit:
            index = row["prompt_index"]
            points = [f"{row['strategy']}@{n}" for n in row["chosen_at"]] if row["pool"] else [row["run"]] * row["returned"]
            for point in points:
                write_prompt_folder(self.root / "images" / point, index, record, [from_png(row["image"])])
            if row.get("strip") is not None and row["round"] == 0:
                path = self.root / "strips" / row["run"] / f"{index:05d}" / f"{row['path']:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(row["strip"])
