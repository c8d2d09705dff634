"""Image-only processors for vision-language judges, with or without torchvision.

transformers 5 builds Qwen2-VL and LLaVA-OneVision processors from an image processor, a tokenizer
and a video processor, and checks each one's class. Video processors exist only with torchvision,
and `None` fails the check, so these processors cannot be built or loaded without it, although
their image path runs on PIL. A judge only reads images: we build the same processor classes with
no video processor, letting `None` through the class check while constructing, and save them the
way `save_pretrained` does (which would otherwise trip over the missing video processor).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoImageProcessor, AutoTokenizer, ProcessorMixin

_CHECK_LOCK = threading.Lock()


@contextmanager
def _video_processor_may_be_none() -> Iterator[None]:
    check = ProcessorMixin.check_argument_for_proper_class

    def lenient(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return check(self, argument_name, argument)

    with _CHECK_LOCK:  # the patch is process-wide while it lasts
        ProcessorMixin.check_argument_for_proper_class = lenient
        try:
            yield
        finally:
            ProcessorMixin.check_argument_for_proper_class = check


def image_processor_only(processor_class: type[ProcessorMixin], image_processor, tokenizer, **kwargs) -> ProcessorMixin:
    """`processor_class(image_processor, tokenizer, video_processor=None, **kwargs)`."""
    with _video_processor_may_be_none():
        return processor_class(image_processor=image_processor, tokenizer=tokenizer, video_processor=None, **kwargs)


def load_processor(processor_class: type[ProcessorMixin], path: str | Path) -> ProcessorMixin:
    """The processor saved in `path` (its image processor, tokenizer, chat template and settings)."""
    processor_dict, kwargs = processor_class.get_processor_dict(path)
    parts = {
        "image_processor": AutoImageProcessor.from_pretrained(path),
        "tokenizer": AutoTokenizer.from_pretrained(path),
        "video_processor": None,
    }
    args = [parts[name] for name in processor_class.get_attributes()]
    with _video_processor_may_be_none():
        return processor_class.from_args_and_dict(args, processor_dict, **kwargs)


def save_processor(processor: ProcessorMixin, path: str | Path) -> None:
    """What `processor.save_pretrained(path)` writes: tokenizer files, processor_config.json (with the
    image processor's settings) and chat_template.jinja."""
    if isinstance(processor.chat_template, dict):
        raise TypeError("saving a processor with several named chat templates is not supported")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    processor.tokenizer.save_pretrained(path)
    processor.to_json_file(path / "processor_config.json")
    if processor.chat_template is not None:
        (path / "chat_template.jinja").write_text(processor.chat_template)
