"""Streamed generation in the OpenAI Images API's shape: server-sent events
`image_generation.partial_image` (cotgen's checkpoint previews) and `image_generation.completed`,
each with cotgen's extras under "cotgen", and the watcher that carries a request's checkpoints from
the strategy's thread to the replica's event loop and stops the run when the client goes away."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

from cotgen.layout import png
from cotgen.serving.errors import ApiError
from cotgen.verify.progress import Checkpoint


def partial_steps(steps: int, partial_images: int) -> list[int]:
    """The checkpoint steps (of `steps`, the last being the finished image) whose previews are streamed:
    `partial_images` of the steps before the last, spread evenly and ending with the latest."""
    checkpoints = steps - 1
    if partial_images >= checkpoints:
        return list(range(1, checkpoints + 1))
    return sorted({round(i * checkpoints / partial_images) for i in range(1, partial_images + 1)})


def checkpoint_extras(event: Checkpoint) -> dict:
    """What a client shows of verification at a checkpoint: the live paths, their step scores, the
    pruned ones and why, and which path the partial image previews."""
    leader = event.leader()
    pruned = dict(event.pruned)
    return {
        "round": event.round,
        "step": event.step,
        "steps": event.steps,
        "candidates": event.candidates,
        "candidates_alive": len(event.paths) - len(pruned),
        "path": event.paths[leader],
        "step_score": event.scores[leader],
        "scores": [{"path": p, "score": s} for p, s in zip(event.paths, event.scores)],
        "pruned": [{"path": p, "reason": r} for p, r in event.pruned],
    }


class RequestWatcher:
    """One request's watcher: the checkpoints of round 0 at `steps` become partial images (encoded on
    the strategy's thread) on `queue`, read on the event loop; `stop()` ends the run at its next
    decoding step."""

    def __init__(self, loop: asyncio.AbstractEventLoop, steps: list[int] = ()):
        self.queue: asyncio.Queue[dict] = asyncio.Queue()
        self._loop, self._steps, self._stop = loop, set(steps), threading.Event()

    def wants(self, round: int, step: int) -> bool:
        return round == 0 and step in self._steps

    def checkpoint(self, event: Checkpoint) -> None:
        if self.wants(event.round, event.step):
            partial = {"png": png(event.previews[event.leader()]), "cotgen": checkpoint_extras(event)}
            self._loop.call_soon_threadsafe(self.queue.put_nowait, partial)

    def cancelled(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()


def partial_image_event(partial: dict, index: int, size: str) -> dict:
    return {
        "type": "image_generation.partial_image",
        "b64_json": base64.b64encode(partial["png"]).decode("ascii"),
        "partial_image_index": index,
        **_image_fields(size),
        "cotgen": partial["cotgen"],
    }


def completed_event(image_png: bytes, size: str, prompt_tokens: int, trace: dict) -> dict:
    """The final image; `usage` counts the prompt's tokens and every image token decoded (all paths)."""
    image_tokens = trace["costs"]["image_tokens"]
    usage = {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
        "output_tokens": image_tokens,
        "total_tokens": prompt_tokens + image_tokens,
    }
    return {
        "type": "image_generation.completed",
        "b64_json": base64.b64encode(image_png).decode("ascii"),
        **_image_fields(size),
        "usage": usage,
        "cotgen": {"trace": trace},
    }


def _image_fields(size: str) -> dict:
    return {"created_at": int(time.time()), "size": size, "quality": "auto", "background": "opaque", "output_format": "png"}


def sse(event: dict) -> bytes:
    """One server-sent event, named by its type."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def error_sse(err: ApiError) -> bytes:
    """An error after the stream began (its status was already sent): the OpenAI client raises it."""
    body = {"type": "error", "error": {"message": err.message, "type": err.kind, "param": err.param, "code": err.code}}
    return sse(body)
