"""The command line every recipe in `jobs/` shares.

    python jobs/<recipe>.py --config FILE [key=value ...]

The YAML file describes the whole run (defaults apply where it is silent), `key=value` overrides
change single fields (dotted for sections), and the resolved config is saved beside the outputs as
<out>/config.yaml. Bad input anywhere in the run ends it with `<recipe>: error: <message>` and
exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cotgen.config import load_config, save_config
from cotgen.errors import InputError

T = TypeVar("T")


def parse_config(cls: type[T], argv: list[str], doc: str | None, example: str) -> T:
    """The recipe's validated config from `--config FILE` and `key=value` overrides (`example` shows some)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (defaults apply where it is silent)")
    parser.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {example}")
    args = parser.parse_args(argv)
    return load_config(cls, args.config, args.overrides)


def save_resolved(cfg, out: str | Path) -> Path:
    """Create the output folder and save the resolved config there as config.yaml; returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    return out


def run(main: Callable[[list[str]], int], name: str) -> None:
    """Exit with `main(sys.argv[1:])`'s status; an InputError is printed as `<name>: error: ...`, status 2."""
    try:
        status = main(sys.argv[1:])
    except InputError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        status = 2
    sys.exit(status)
