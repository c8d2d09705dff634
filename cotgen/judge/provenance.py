"""Which generator's images a judge learnt, and a warning when it is asked to verify another's.

A judge trained on one generator's images (the embedded one is) learns that generator's failures:
its scores need not carry over to a retrained or different generator, whose name may even be the
same ("embedded" before and after a retraining). `jobs/train_judge.py` records the generator's name
and weights digest (`cotgen.models.presets.weights_digest`) in the judge's config.json; cotgen warns
where a judge meets a generator (`cotgen generate`, sweeps, `cotgen serve`) if the digests differ.
A judge with no record (any hub judge) is never warned about.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from transformers import PreTrainedModel

from cotgen.errors import InputError
from cotgen.models.presets import HUB_ID, resolve, weights_digest

CONFIG_KEY = "cotgen_generator"


class GeneratorMismatchWarning(UserWarning):
    """A judge verifies the images of another generator than the one it learnt."""


def record_generator(model: PreTrainedModel, name: str, digest: str) -> None:
    """Note in the judge's config (and the config.json it saves) the generator whose images it learnt."""
    setattr(model.config, CONFIG_KEY, {"name": str(name), "digest": digest})


def _local_folder(name: str | Path, role: str) -> Path | None:
    """The model's local folder, or None for a hub id that is not a local path (nothing is downloaded)."""
    if not Path(str(name)).expanduser().exists() and HUB_ID.fullmatch(str(name)):
        return None
    try:
        return resolve(name, role)
    except InputError:
        return None


def trained_on(judge: str | Path) -> dict | None:
    """The judge's record of its generator ({name, digest}), read from its config.json; None without one."""
    folder = _local_folder(judge, "judge")
    if folder is None or not (folder / "config.json").is_file():
        return None
    record = json.loads((folder / "config.json").read_text()).get(CONFIG_KEY)
    return record if isinstance(record, dict) and "digest" in record else None


def mismatch(judge: str | Path, generator: str | Path) -> str | None:
    """Why the judge may not fit the generator, or None when it learnt this generator's images (or
    either side cannot be told: no record, or weights that are not local)."""
    record = trained_on(judge)
    if record is None or _local_folder(generator, "generator") is None:
        return None
    digest = weights_digest(generator, "generator")
    if digest == record["digest"]:
        return None
    return (
        f"judge {judge} learnt the images of generator {record['name']} (weights {record['digest']}), not those of "
        f"{generator} (weights {digest}): its scores may not carry over; retrain it on this generator's images "
        f"(jobs/train_judge.py data.generator={generator})"
    )


def warn_if_mismatched(judge: str | Path, generator: str | Path) -> str | None:
    """`mismatch`, raised as a `GeneratorMismatchWarning` when there is one; returns the message."""
    message = mismatch(judge, generator)
    if message is not None:
        warnings.warn(message, GeneratorMismatchWarning, stacklevel=2)
    return message
