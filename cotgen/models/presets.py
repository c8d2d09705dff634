"""The one model-name resolver: "embedded", preset names, folders and hub ids to local folders.

"embedded" is the generator or judge cotgen ships in its package. A preset never downloads: its weights live in `$COTGEN_MODELS/<name>` (default
`~/.cache/cotgen/models/<name>`), and when they are missing the error gives the one command that
fetches them. A hub id ("owner/name") that is not a local folder is downloaded into Hugging Face's
cache, because the user asked for it by name. Nothing here runs remote code: every preset is a
model type transformers implements.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cotgen.errors import InputError

MODELS_ENV = "COTGEN_MODELS"
DEFAULT_MODELS = Path("~/.cache/cotgen/models")
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
ASSETS = Path(__file__).resolve().parents[1] / "assets"
EMBEDDED = {"generator": ASSETS / "generator", "judge": ASSETS / "judge"}
"""The models cotgen ships, by role: what the name "embedded" means."""


@dataclass(frozen=True)
class Preset:
    """A checkpoint cotgen knows by name: its role, where it is published, what config.json says."""

    role: str  # "generator" or "judge"
    hub_id: str
    model_type: str
    convert: str = ""  # the step after downloading when the hub files are not in transformers' format

    def fetch(self, folder: Path) -> str:
        """The instructions that put this checkpoint into `folder`."""
        if not self.convert:
            return f"`hf download {self.hub_id} --local-dir {folder}`"
        return self.convert.format(hub_id=self.hub_id, folder=folder)


PRESETS: dict[str, Preset] = {
    # deepseek-ai/Janus-Pro-* hold DeepSeek's own format (model_type multi_modality); transformers'
    # Janus classes read the converted repos of the deepseek-community organisation.
    "janus-pro-1b": Preset("generator", "deepseek-community/Janus-Pro-1B", "janus"),
    "janus-pro-7b": Preset("generator", "deepseek-community/Janus-Pro-7B", "janus"),
    "qwen2.5-vl-7b": Preset("judge", "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl"),
    # The paper's PARM (a LLaVA-OneVision-Qwen2-7B fine-tune) is published in LLaVA-NeXT's format.
    "parm": Preset(
        "judge",
        "ZiyuG/Image-Generation-CoT",
        "llava_onevision",
        convert=(
            "`hf download {hub_id} --include 'parm/*' --local-dir DOWNLOAD`, then convert DOWNLOAD/parm "
            "(LLaVA-NeXT's format) into a transformers LlavaOnevision folder at {folder} with transformers' "
            "models/llava_onevision/convert_llava_onevision_weights_to_hf.py"
        ),
    ),
}


def models_root() -> Path:
    return Path(os.environ.get(MODELS_ENV) or DEFAULT_MODELS).expanduser()


def _names(role: str) -> str:
    return ", ".join(name for name, preset in PRESETS.items() if preset.role == role)


def _preset_folder(name: str, preset: Preset, role: str) -> Path:
    if preset.role != role:
        raise InputError(f"{name} is a {preset.role} preset, not a {role} (the {role} presets: {_names(role)})")
    folder = models_root() / name
    config = folder / "config.json"
    if not config.is_file():
        raise InputError(
            f"{name}: no weights in {folder}; fetch them with {preset.fetch(folder)} "
            f"(or set {MODELS_ENV} to the folder that holds {name}/)"
        )
    found = json.loads(config.read_text()).get("model_type")
    if found != preset.model_type:
        raise InputError(
            f"{name}: {folder} holds model_type {found!r}, not {preset.model_type!r} (transformers' format); "
            f"replace it with {preset.fetch(folder)}"
        )
    return folder


def _download(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download  # reads HF_TOKEN from the environment

    try:
        return Path(snapshot_download(hub_id))
    except Exception as err:  # noqa: BLE001 -- offline, gated, missing: one line for the user either way
        raise InputError(f"{hub_id}: could not download from the Hugging Face Hub ({type(err).__name__})") from None


def resolve(name_or_path: str | Path, role: str) -> Path:
    """The local folder for "embedded", a preset name, a folder, or a hub id (downloaded on request)."""
    text = str(name_or_path)
    if text == "embedded":
        folder = EMBEDDED[role]
        if not (folder / "config.json").is_file():
            raise InputError(f"the embedded {role} is missing from this install ({folder}); pass a {role} folder instead")
        return folder
    if text in PRESETS:
        return _preset_folder(text, PRESETS[text], role)
    path = Path(text).expanduser()
    if not path.exists() and HUB_ID.fullmatch(text):
        return _download(text)
    return path


_DIGESTS: dict[tuple, str] = {}


def weights_digest(name_or_path: str | Path, role: str) -> str:
    """A content hash (sha256, 16 hex digits) of a model folder's weight files: what tells two models
    apart when their names are the same ("embedded" before and after a retraining)."""
    folder = resolve(name_or_path, role)
    files = sorted(f for f in folder.glob("*") if f.suffix in (".safetensors", ".bin", ".pt") and f.is_file())
    if not files:
        raise InputError(f"{folder}: no weight files (*.safetensors) to identify the {role} by")
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    key = (str(folder.resolve()), stamp)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode())
            with open(f, "rb") as handle:
                while chunk := handle.read(1 << 24):
                    digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()[:16]
    return _DIGESTS[key]
