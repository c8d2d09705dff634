"""The DPO objective over image tokens.

Log-probs: the sum over a path's image tokens of log p(token | prompt, earlier tokens), teacher-forced
through the generation head — the conditional model alone, without classifier-free guidance. Guidance
mixes in an unconditional branch that DPO would not train; scoring the conditional branch is what the
paper's code does, and sampling afterwards guides the trained conditional branch as before.

Loss: TRL's sigmoid DPO, −log σ(β · ((π_c − ref_c) − (π_r − ref_r))), and its metrics (rewards are
β · log-ratios). TRL 1.16 computes this inside `DPOTrainer._compute_loss`, tied to its Accelerate
state and a text LM head; here the training loop is DeepSpeed under Ray Train, so the formula is
applied to TRL's per-token log-probs (`selective_log_softmax`) directly, with the same names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import JanusForConditionalGeneration
from trl.trainer.utils import selective_log_softmax

from cotgen.models.ar import image_token_logits
from cotgen.models.janus import pad_prompts


def policy_dtype(device: str) -> torch.dtype:
    """The precision a round's policy trains in on `device` (DeepSpeed bf16 on CUDA, fp32 on CPU). The
    reference log-probs are computed in it too: in another, the policy would differ from its own
    reference before the first update (a reward margin that is rounding, not preference)."""
    return torch.bfloat16 if device == "cuda" else torch.float32


def sequence_logps(model: JanusForConditionalGeneration, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens | prompt) per row: (batch,). Prompts left-padded; tokens (batch, grid²)."""
    logits = image_token_logits(model, prompt_ids, prompt_mask, tokens)
    return selective_log_softmax(logits.float(), tokens).sum(dim=-1)


def dpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean sigmoid DPO loss over pairs, and TRL's per-pair metrics (detached)."""
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    loss = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
    chosen_rewards, rejected_rewards = beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
    metrics = {
        "rewards/chosen": chosen_rewards,
        "rewards/rejected": rejected_rewards,
        "rewards/margins": chosen_rewards - rejected_rewards,
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float(),
        "logps/chosen": chosen.detach(),
        "logps/rejected": rejected.detach(),
    }
    return loss, metrics


def collate(rows: list[dict], pad: int) -> dict[str, torch.Tensor]:
    """Pair rows (`prompt_ids`, `chosen_tokens`, `rejected_tokens`, `ref_chosen`, `ref_rejected`) as
    one batch of [chosen rows; rejected rows], each prompt twice, as TRL concatenates them."""
    ids, mask = pad_prompts([list(r["prompt_ids"]) for r in rows], pad)
    tokens = torch.tensor([list(r["chosen_tokens"]) for r in rows] + [list(r["rejected_tokens"]) for r in rows])
    return {
        "prompt_ids": torch.cat([ids, ids]),
        "prompt_mask": torch.cat([mask, mask]),
        "tokens": tokens,
        "ref_chosen": torch.tensor([float(r["ref_chosen"]) for r in rows], dtype=torch.float64),
        "ref_rejected": torch.tensor([float(r["ref_rejected"]) for r in rows], dtype=torch.float64),
    }


def dpo_step(model: JanusForConditionalGeneration, batch: dict[str, torch.Tensor], beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and metrics of one batch from `collate` (one forward pass for chosen and rejected)."""
    device = next(model.parameters()).device
    logps = sequence_logps(model, batch["prompt_ids"].to(device), batch["prompt_mask"].to(device), batch["tokens"].to(device))
    chosen, rejected = logps.chunk(2)
    return dpo_loss(chosen, rejected, batch["ref_chosen"].to(device, logps.dtype), batch["ref_rejected"].to(device, logps.dtype), beta)


@torch.no_grad()
def reference_logps(model: JanusForConditionalGeneration, rows: list[dict], pad: int, batch_size: int = 16) -> list[tuple[float, float]]:
    """(chosen, rejected) log-probs of each pair row under `model`: the frozen reference, precomputed."""
    out, device = [], next(model.parameters()).device
    for start in range(0, len(rows), batch_size):
        chunk = [{**r, "ref_chosen": 0.0, "ref_rejected": 0.0} for r in rows[start : start + batch_size]]
        batch = {k: v.to(device) for k, v in collate(chunk, pad).items()}
        chosen, rejected = sequence_logps(model, batch["prompt_ids"], batch["prompt_mask"], batch["tokens"]).chunk(2)
        out += list(zip(chosen.tolist(), rejected.tolist()))
    return out
