"""cotgen.train.dpo without Ray: the loss against a hand computation, pairs, log-probs, DPO steps on a
tiny random Janus that move its preference the right way, and a run folder that refuses other models."""

import itertools
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tiny_models import SPECIAL, tiny_janus

from cotgen.errors import InputError
from cotgen.evaluate.exact import evaluate_image
from cotgen.generate.engine import PathKey, Sampling
from cotgen.generate.factory import load_engine, prompt_ids
from cotgen.models.ar import image_token_loss
from cotgen.models.janus import load_generator, pad_prompts, special_tokens
from cotgen.models.presets import resolve, weights_digest
from cotgen.train.dpo.config import DPOConfig, DPOEvalConfig, DPOTrainConfig, DPOTrainerConfig
from cotgen.train.dpo.loss import collate, dpo_loss, dpo_step, policy_dtype, reference_logps, sequence_logps
from cotgen.train.dpo.pairs import build_pairs, label_rows, pair_rows
from cotgen.train.dpo.rounds import check_models, check_settings, scored_records
from cotgen.world.records import evaluation_records, first_per_tag, split_records

REPO = Path(__file__).resolve().parents[1]
TINY = {"grid": 4, "layers": 1}
SAMPLING = Sampling(guidance=5.0, temperature=1.0)


def test_loss_and_metrics_equal_a_hand_computation():
    chosen, rejected = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])
    ref_chosen, ref_rejected = torch.tensor([-11.0, -18.0]), torch.tensor([-11.0, -16.0])
    loss, m = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    # pair 0: (−10+11) − (−12+11) = 2; pair 1: (−20+18) − (−15+16) = −3
    expected = (math.log(1 + math.exp(-0.2)) + math.log(1 + math.exp(0.3))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert m["rewards/chosen"].tolist() == pytest.approx([0.1, -0.2])
    assert m["rewards/rejected"].tolist() == pytest.approx([-0.1, 0.1])
    assert m["rewards/margins"].tolist() == pytest.approx([0.2, -0.3])
    assert m["rewards/accuracies"].tolist() == [1.0, 0.0]
    higher_beta, _ = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=1.0)
    assert higher_beta.item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(1 + math.exp(3))) / 2, rel=1e-6)


def row(prompt, sample, score, correct, seed=3):
    return {"prompt_index": prompt, "seed": seed, "key": str(prompt), "sample": sample, "final_score": score, "correct": correct,
            "tokens": [prompt, sample]}  # fmt: skip


def test_pairs_join_one_yes_with_one_no_and_drop_unanimous_prompts():
    rows = [
        row(0, 0, 0.2, False), row(0, 1, 0.9, True), row(0, 2, 0.7, True), row(0, 3, 0.1, False),
        row(1, 0, 0.9, True), row(1, 1, 0.8, True),  # unanimous "yes"
        row(2, 0, 0.1, False), row(2, 1, 0.3, False),  # unanimous "no"
        row(3, 1, 0.6, False), row(3, 0, 0.4, True),  # the judge and the evaluator disagree
    ]  # fmt: skip
    pairs = build_pairs(label_rows(rows, "exact"))
    assert [(p.prompt_index, p.chosen.key.sample, p.rejected.key.sample) for p in pairs] == [(0, 1, 0), (3, 0, 1)]
    assert pairs[0].chosen.key == PathKey(3, "0", 1) and pairs[0].chosen.label and not pairs[0].rejected.label
    by_judge = build_pairs(label_rows(rows, "judge", threshold=0.5))
    assert [(p.prompt_index, p.chosen.key.sample, p.rejected.key.sample) for p in by_judge] == [(0, 1, 0), (3, 1, 0)]
    assert build_pairs(label_rows(rows, "judge", threshold=0.95)) == []  # every label "no": nothing to prefer
    with pytest.raises(ValueError, match="labeller"):
        label_rows(rows, "human")
    old = [{**r, "tokens": None} for r in rows]  # rows of a sweep written before they stored tokens
    with pytest.raises(InputError, match=r"prompt 0, path .*decoded but without image tokens"):
        label_rows(old, "exact")


def test_several_pairs_per_prompt_are_distinct_couples_that_spread_over_the_images():
    # prompt 0: "yes" samples 1, 4 and "no" samples 0, 2, 3; prompt 1: 3 "yes" and 1 "no"
    rows = [row(0, s, 0.0, s in (1, 4)) for s in range(5)] + [row(1, s, 0.0, s != 2) for s in range(4)]
    couples = [(p.prompt_index, p.chosen.key.sample, p.rejected.key.sample) for p in build_pairs(label_rows(rows, "exact"), 10)]
    assert couples == [(0, 1, 0), (0, 4, 2), (0, 1, 2), (0, 4, 3), (0, 1, 3), (0, 4, 0), (1, 0, 2), (1, 1, 2), (1, 3, 2)]
    two = [(p.prompt_index, p.chosen.key.sample, p.rejected.key.sample) for p in build_pairs(label_rows(rows, "exact"), 2)]
    assert two == [(0, 1, 0), (0, 4, 2), (1, 0, 2), (1, 1, 2)]  # the first min(yes, no) couples share no image
    assert build_pairs(label_rows(rows, "exact"), 1) == build_pairs(label_rows(rows, "exact"))  # the paper's one per prompt
    with pytest.raises(InputError, match="pairs_per_prompt: must be at least 1"):
        DPOConfig(pairs_per_prompt=0)


def test_rounds_are_scored_on_held_out_records_or_for_choosing_settings_on_training_ones():
    assert scored_records(DPOConfig(eval=DPOEvalConfig(per_tag=3))) == first_per_tag(evaluation_records(), 3)
    train = scored_records(DPOConfig(eval=DPOEvalConfig(split="train", per_tag=None)))
    assert len(train) == 553 and [r.tag for r in train] == [r.tag for r in evaluation_records()]  # GenEval's tag mix
    assert {r.prompt for r in train} <= {r.prompt for tag in {r.tag for r in train} for r in split_records(tag, "train")}
    with pytest.raises(InputError, match="eval.split: 'test' is not one of heldout, train"):
        DPOConfig(eval=DPOEvalConfig(split="test"))


def test_sequence_logps_are_the_teacher_forced_likelihood_whatever_the_padding():
    model = tiny_janus(**TINY)
    prompts = [[1, 10, 11, 12, 3], [1, 20, 3]]
    tokens = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    ids, mask = pad_prompts(prompts, SPECIAL.pad)
    with torch.no_grad():
        both = sequence_logps(model, ids, mask, tokens)
        for i, prompt in enumerate(prompts):
            alone_ids, alone_mask = pad_prompts([prompt], SPECIAL.pad)
            alone = sequence_logps(model, alone_ids, alone_mask, tokens[i : i + 1])
            assert both[i].item() == pytest.approx(alone.item(), abs=1e-4)  # left-padding changes nothing
            ce = image_token_loss(model, alone_ids, alone_mask, tokens[i : i + 1])
            assert alone.item() == pytest.approx(-16 * ce.item(), rel=1e-5)  # the sum of the training loss


def test_dpo_steps_raise_the_margin_of_chosen_over_rejected():
    model = tiny_janus(**TINY)
    g = torch.Generator().manual_seed(1)
    rows = [
        {"prompt_ids": p, "chosen_tokens": torch.randint(0, 128, (16,), generator=g).tolist(),
         "rejected_tokens": torch.randint(0, 128, (16,), generator=g).tolist()}
        for p in ([1, 10, 11, 3], [1, 20, 3], [1, 30, 31, 32, 3], [1, 40, 41, 3])
    ]  # fmt: skip
    for r, (c, rej) in zip(rows, reference_logps(model.eval(), rows, SPECIAL.pad)):
        r["ref_chosen"], r["ref_rejected"] = c, rej
    batch = collate(rows, SPECIAL.pad)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    margins, losses = [], []
    for _ in range(8):
        loss, m = dpo_step(model, batch, beta=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        margins.append(m["rewards/margins"].mean().item())
        losses.append(loss.item())
    assert margins[0] == pytest.approx(0.0, abs=1e-4) and losses[0] == pytest.approx(math.log(2), abs=1e-4)  # policy = reference
    assert all(b > a for a, b in itertools.pairwise(margins)) and margins[-1] > 0.1 and losses[-1] < losses[0]
    assert m["rewards/accuracies"].mean().item() == 1.0
    assert (m["rewards/chosen"] > 0).all() and (m["rewards/rejected"] < 0).all()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, untrained_judge_dir):
    """A round's samples as the sweep stores them: orm@8 rows of the embedded generator (a copy in
    a folder, the round's policy) for three training prompts, through a sweep folder and back."""
    from cotgen.judge import load_judge
    from cotgen.sweep.plan import Run, Unit
    from cotgen.sweep.store import SweepStore, load_rows
    from cotgen.sweep.work import evaluate_rows, run_unit
    from cotgen.verify.config import VerifyConfig

    root = tmp_path_factory.mktemp("round")
    shutil.copytree(resolve("embedded", "generator"), root / "policy")
    engine, tokenizer = load_engine(str(root / "policy"), SAMPLING)
    judge = load_judge(untrained_judge_dir)
    records = [split_records(tag, "train")[0] for tag in ("single_object", "colors", "counting")]
    store = SweepStore(root / "samples")
    for i, record in enumerate(records):
        unit = Unit(Run("orm", 8, pool=True), i)
        store.add(evaluate_rows(run_unit(engine, judge, lambda t: prompt_ids(tokenizer, t), VerifyConfig(strategy="orm", n=8), unit, record, 5, [8])))
    store.flush(records)
    return root / "policy", records, load_rows(root / "samples").to_pylist()


def test_pairs_train_on_the_tokens_stored_with_their_rows(sampled):
    policy, records, rows = sampled
    pairs, replay = pair_rows(str(policy), SAMPLING, "cpu", torch.float32, records, rows, "exact", 0.5, replay=100)
    assert pairs and replay == {"replayed": 2 * len(pairs), "differ": 0, "paths": []}  # on this CPU replay is exact
    by_path = {(r["prompt_index"], r["sample"]): r for r in rows}
    engine, _ = load_engine(str(policy), SAMPLING)
    batch = collate(pairs, special_tokens(engine.model).pad)
    n = len(pairs)
    for i, pair in enumerate(pairs):
        for side, sample, tokens in (("chosen", pair["chosen_sample"], batch["tokens"][i]), ("rejected", pair["rejected_sample"], batch["tokens"][n + i])):
            stored = by_path[(pair["prompt_index"], sample)]
            assert pair[f"{side}_tokens"] == stored["tokens"] and tokens.tolist() == stored["tokens"]  # what the trainer sees
            image = Image.fromarray(engine.decode_rows(tokens[None])[0])
            assert evaluate_image(image, records[pair["prompt_index"]]).correct == stored["correct"] == (side == "chosen")


def test_a_replay_that_differs_is_reported_and_the_stored_tokens_are_used(sampled, tmp_path, caplog):
    policy, records, rows = sampled
    changed = tmp_path / "policy"
    shutil.copytree(policy, changed)
    weights = load_file(changed / "model.safetensors")
    weights["model.generation_head.vision_head.weight"] *= 1.05  # the same key now samples (some) other tokens
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})
    with caplog.at_level("WARNING", logger="cotgen.train.dpo.pairs"):
        pairs, replay = pair_rows(str(changed), SAMPLING, "cpu", torch.float32, records, rows, "exact", 0.5, replay=100)
    assert replay["replayed"] == 2 * len(pairs) and 0 < replay["differ"] == len(replay["paths"])
    assert f"replay check: {replay['differ']} of {replay['replayed']} paths replayed to other tokens" in caplog.text
    by_path = {(r["prompt_index"], r["sample"]): r["tokens"] for r in rows}
    for path in replay["paths"]:
        assert path["tokens_differ"] > 0 and (path["prompt_index"], path["sample"]) in by_path
    same, _ = pair_rows(str(policy), SAMPLING, "cpu", torch.float32, records, rows, "exact", 0.5, replay=0)
    for pair, before in zip(pairs, same, strict=True):  # the same pairs, on the stored tokens
        assert pair["chosen_tokens"] == before["chosen_tokens"] == by_path[(pair["prompt_index"], pair["chosen_sample"])]
        assert pair["rejected_tokens"] == before["rejected_tokens"] == by_path[(pair["prompt_index"], pair["rejected_sample"])]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_round_starts_at_zero_margin_in_the_precision_the_policy_trains_in(sampled, dtype):
    """The reference log-probs of `pair_rows` against the first training step of a policy in `dtype`
    (DeepSpeed casts the module to bf16 when it trains in bf16); a reference in the other precision
    would not start at zero."""
    policy, records, rows = sampled
    model, _ = load_generator(policy)
    model.to(dtype).train()
    margins = {}
    for reference in (torch.float32, torch.bfloat16):
        pairs, _ = pair_rows(str(policy), SAMPLING, "cpu", reference, records, rows, "exact", 0.5, replay=0)
        with torch.no_grad():
            _, metrics = dpo_step(model, collate(pairs, special_tokens(model).pad), beta=0.1)
        margins[reference] = metrics["rewards/margins"].abs().max().item()
    other = torch.bfloat16 if dtype == torch.float32 else torch.float32
    assert margins[dtype] < 1e-4 and margins[other] > 1e-3, margins
    assert policy_dtype("cuda") == torch.bfloat16 and policy_dtype("cpu") == torch.float32  # what fit_round and pair_round use


def test_train_config_checks_batch_shapes():
    assert DPOTrainConfig(batch_size=8, micro_batch=2).accumulation(workers=2) == 2
    with pytest.raises(InputError, match="batch_size"):
        DPOTrainConfig(batch_size=6, micro_batch=4)
    with pytest.raises(InputError, match="batch_size"):
        DPOTrainConfig(batch_size=4, micro_batch=4).accumulation(workers=3)


def test_evaluate_generate_uses_the_model_it_names(tmp_path):
    """A DPO round's policy is a model folder: `cotgen evaluate --generate FOLDER` must generate with it."""
    from conftest import run_cli

    from cotgen.generate import load_engine
    from cotgen.generate.pipeline import generate_images
    from cotgen.world.records import evaluation_records, first_per_tag

    model, tokenizer = load_generator("embedded")
    with torch.no_grad():
        model.model.generation_head.vision_head.weight.mul_(-1.0)  # a different policy, certain to draw other images
    model.save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    result = run_cli("evaluate", tmp_path / "out", "--generate", tmp_path / "policy", "--per-tag", "1")
    assert result.returncode == 0, result.stderr
    written = [Image.open(tmp_path / "out" / f"{i:05d}" / "samples" / "0000.png").convert("RGB").tobytes() for i in range(6)]
    records = first_per_tag(evaluation_records(), 1)
    for name, same in (("embedded", False), (tmp_path / "policy", True)):
        engine, tokenizer = load_engine(str(name))
        pixels = [image.tobytes() for _, _, image in generate_images(engine, tokenizer, records, 1, seed=0)]
        assert (pixels == written) == same, name


def test_a_run_folder_refuses_a_starting_policy_whose_weights_changed(tmp_path, untrained_judge_dir):
    policy = tmp_path / "policy"
    shutil.copytree(resolve("embedded", "generator"), policy)
    cfg = DPOConfig(out=str(tmp_path / "run"), generator=str(policy), judge=str(untrained_judge_dir))
    check_models(cfg)
    check_models(cfg)  # the same weights: the run resumes
    recorded = weights_digest(policy, "generator")
    weights = load_file(policy / "model.safetensors")
    weights["model.generation_head.vision_head.weight"] *= -1.0  # the folder overwritten by another model
    save_file(weights, policy / "model.safetensors", metadata={"format": "pt"})
    now = weights_digest(policy, "generator")
    assert now != recorded
    with pytest.raises(InputError, match=rf"generator: {policy} has weights digest {now}, but .* weights digest {recorded}"):
        check_models(cfg)


def test_a_run_folder_refuses_to_resume_with_other_settings(tmp_path):
    from cotgen.config import save_config

    cfg = DPOConfig(out=str(tmp_path / "run"))
    check_settings(cfg)  # a new folder
    save_config(cfg, tmp_path / "run" / "config.yaml")
    check_settings(DPOConfig(out=cfg.out, rounds=3, trainer=DPOTrainerConfig(threads=2)))  # more rounds, other threads: it goes on
    with pytest.raises(InputError, match=r"run was run with other settings \(pairs_per_prompt: 1 → 4; train.lr: 1e-05 → 0.0001\)"):
        check_settings(DPOConfig(out=cfg.out, train=DPOTrainConfig(lr=1e-4), pairs_per_prompt=4))


def test_the_dpo_recipe_stops_before_resuming_with_another_judge(tmp_path, untrained_judge_dir):
    check_models(DPOConfig(out=str(tmp_path / "run"), judge=str(untrained_judge_dir)))
    job = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "train_dpo.py"), f"out={tmp_path / 'run'}", "judge=embedded"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert job.returncode == 2, job.stderr[-2000:]
    digests = (weights_digest("embedded", "judge"), weights_digest(untrained_judge_dir, "judge"))
    assert job.stderr.startswith("train_dpo: error: judge: embedded has weights digest") and all(d in job.stderr for d in digests)
    assert not (tmp_path / "run" / "config.yaml").exists()  # nothing of the run was touched
