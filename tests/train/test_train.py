"""rt-train on a tiny RT-1: the loss falls, checkpoints load as policies, resume is exact, padding is invisible,
mixtures split batches by weight."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.mixture import MixtureDataset
from rt_policy_node.data.synthetic import write_synthetic_episodes
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import ActionDim
from rt_policy_node.policies.policy import load_policy
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.text import default_text_encoder
from rt_policy_node.train.checkpoint import latest_checkpoint, step_dir
from rt_policy_node.train.config import TrainConfig
from rt_policy_node.train.recipes import RECIPES
from rt_policy_node.train.train import main as rt_train
from rt_policy_node.train.training_log import read_log
from rt_policy_node.train.validation import rt1_metrics


def _args(dataset_dir, out, config_file, steps, *extra):
    return [
        "--data",
        str(dataset_dir),
        "--out",
        str(out),
        "--model-config",
        str(config_file),
        "--steps",
        str(steps),
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--lr",
        "2e-3",
        "--warmup-steps",
        "3",
        "--log-every",
        "3",
        *extra,
    ]


def test_training_lowers_the_loss_and_leaves_loadable_policies(tmp_path, dataset_dir, tiny_config_file):
    out = tmp_path / "run"
    assert rt_train(_args(dataset_dir, out, tiny_config_file, 36, "--save-every", "18")) == 0
    log = read_log(out / "log.csv")
    assert log["step"] == list(range(3, 37, 3))
    assert np.mean(log["loss"][-3:]) < 0.7 * log["loss"][0]
    assert log["token_accuracy"][-1] > log["token_accuracy"][0]
    assert (out / "loss.png").is_file() and (out / "train_config.json").is_file()
    assert sorted(d.name for d in (out / "checkpoints").iterdir()) == ["step_00000018", "step_00000036"]
    image = np.zeros((40, 48, 3), np.uint8)
    for path in (out, step_dir(out, 18)):
        policy = load_policy(path)
        policy.reset("move to the red square")
        assert policy.act(image, 0.0).tokens.shape == (11,)
    final = load_file(out / "model.safetensors")
    last = load_file(step_dir(out, 36) / "model.safetensors")
    assert all(torch.equal(final[k], last[k]) for k in final)


def test_a_resumed_run_continues_from_the_saved_step_exactly(tmp_path, dataset_dir, tiny_config_file):
    out = tmp_path / "run"
    args = _args(dataset_dir, out, tiny_config_file, 12, "--save-every", "6")
    assert rt_train(args) == 0
    uninterrupted = load_file(out / "model.safetensors")
    log = read_log(out / "log.csv")
    shutil.rmtree(step_dir(out, 12))
    assert latest_checkpoint(out) == step_dir(out, 6)

    assert rt_train([*args, "--resume"]) == 0
    resumed = load_file(out / "model.safetensors")
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
    again = read_log(out / "log.csv")
    assert again["step"] == log["step"] == [3, 6, 9, 12]
    assert again["loss"] == log["loss"]


def test_padded_window_steps_are_invisible_to_the_real_ones(dataset_dir, tiny_config):
    torch.manual_seed(0)
    model = RT1(tiny_config).eval()
    windows = WindowDataset(dataset_dir, tiny_config.time_steps)
    item = windows[1]  # the second step of an episode: two real steps, two padded
    assert item["step_mask"].tolist() == [True, True, False, False]
    images, text = item["images"][None], item["text_embedding"][None]
    with torch.no_grad():
        padded = model(images, text)[:, :2]
        alone = model(images[:, :2], text)
        scrambled = images.clone()
        scrambled[:, 2:] = torch.randint(0, 255, scrambled[:, 2:].shape, dtype=torch.uint8)
        other_padding = model(scrambled, text)[:, :2]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, other_padding, atol=1e-5, rtol=1e-5)


def test_clear_errors_for_a_batch_larger_than_the_data_and_nothing_to_resume(
    tmp_path, dataset_dir, tiny_config_file, capsys
):
    assert rt_train([*_args(dataset_dir, tmp_path / "a", tiny_config_file, 2), "--batch-size", "1000"]) == 1
    assert "make no full batch of 1000" in capsys.readouterr().err
    assert rt_train([*_args(dataset_dir, tmp_path / "b", tiny_config_file, 2), "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rt_train(["--data", str(dataset_dir), "--out", str(tmp_path / "c"), "--policy", "nope"])


@pytest.mark.parametrize("augmentation", ["pad_then_crop", "none"])
def test_the_rt1_dataset_augments_as_its_config_says(dataset_dir, tiny_config, augmentation):
    tiny_config.augmentation = augmentation
    windows = RECIPES["rt1"].make_dataset(TrainConfig(data=str(dataset_dir), out="unused"), RT1(tiny_config))
    raw = WindowDataset(dataset_dir, tiny_config.time_steps)
    shifted = [not torch.equal(windows[i]["images"], raw[i]["images"]) for i in range(len(raw))]
    assert any(shifted) == (augmentation != "none")


def test_init_with_a_model_config_fine_tunes_a_variant_of_the_trained_weights(
    tmp_path, dataset_dir, tiny_config, tiny_config_file, capsys
):
    assert rt_train(_args(dataset_dir, tmp_path / "trained", tiny_config_file, 3)) == 0
    variant = tmp_path / "variant.json"
    variant.write_text(json.dumps({**tiny_config.to_dict(), "efficientnet_output_stride": 16}))
    out = tmp_path / "finer"
    # One step at a negligible learning rate: what is saved is the init weights, under the variant's config.
    assert rt_train([*_args(dataset_dir, out, variant, 1, "--init", str(tmp_path / "trained")), "--lr", "1e-12"]) == 0
    assert json.loads((out / "config.json").read_text())["efficientnet_output_stride"] == 16
    trained, finer = load_file(tmp_path / "trained" / "model.safetensors"), load_file(out / "model.safetensors")
    assert finer.keys() == trained.keys()
    # Batch-norm statistics move with the step's batch; the learned parameters stay put.
    learned = [k for k in trained if "running_" not in k and "num_batches" not in k]
    assert all(torch.allclose(finer[k], trained[k], atol=1e-6) for k in learned)

    wider = tmp_path / "wider.json"
    wider.write_text(json.dumps({**tiny_config.to_dict(), "token_dim": 64}))
    assert rt_train(_args(dataset_dir, tmp_path / "bad", wider, 1, "--init", str(tmp_path / "trained"))) == 1
    assert "its weights do not fit --model-config" in capsys.readouterr().err


def test_validation_logs_its_metrics_and_keeps_the_best_checkpoint(tmp_path, dataset_dir, tiny_config_file):
    out = tmp_path / "run"
    args = _args(dataset_dir, out, tiny_config_file, 12, "--val-data", str(dataset_dir), "--val-every", "4")
    assert rt_train([*args, "--val-steps", "10", "--val-metric", "val_loss"]) == 0
    log = read_log(out / "log.csv")
    assert log["step"] == [3, 4, 6, 8, 9, 12]
    validated = [s for s, v in zip(log["step"], log["val_loss"], strict=True) if not np.isnan(v)]
    assert validated == [4, 8, 12]
    for name in ("val_token_accuracy", "val_accuracy/mode", "val_terminate_precision", "val_terminate_recall"):
        assert all(0.0 <= v <= 1.0 for v in log[name] if not np.isnan(v)), name
    record = json.loads((out / "best" / "validation.json").read_text())
    losses = {s: v for s, v in zip(log["step"], log["val_loss"], strict=True) if not np.isnan(v)}
    assert record["step"] == min(losses, key=losses.get)
    assert record["metrics"]["val_loss"] == pytest.approx(min(losses.values()))
    assert load_policy(out / "best") is not None and (out / "loss.png").is_file()


def test_validation_options_are_checked_before_training(tmp_path, dataset_dir, tiny_config_file, capsys):
    out = tmp_path / "run"
    args = _args(dataset_dir, out, tiny_config_file, 3, "--val-data", str(dataset_dir))
    assert rt_train([*args, "--val-metric", "val_accuracy"]) == 1
    assert "--val-metric 'val_accuracy' is not one of" in capsys.readouterr().err
    assert not (out / "log.csv").exists()
    assert rt_train([*_args(dataset_dir, out, tiny_config_file, 3, "--val-data", str(tmp_path))]) == 1
    assert "is not a dataset" in capsys.readouterr().err


def test_validation_scores_the_last_step_as_streaming_inference_acts():
    labels = torch.tensor([[0, 5], [1, 5], [0, 7], [2, 9]])
    predicted = torch.tensor([[0, 5], [0, 5], [1, 7], [2, 8]])
    spec = (ActionDim("mode", 1, classes=3), ActionDim("x", 1, -1.0, 1.0))
    metrics = rt1_metrics(predicted, labels, spec, loss=0.5)
    assert metrics["val_token_accuracy"] == pytest.approx(5 / 8)
    assert metrics["val_accuracy/mode"] == pytest.approx(2 / 4) and metrics["val_accuracy/x"] == pytest.approx(3 / 4)
    assert metrics["val_terminate_precision"] == pytest.approx(1 / 2)
    assert metrics["val_terminate_recall"] == pytest.approx(1 / 2)


def test_paraphrases_augment_the_instruction_and_are_kept_with_the_run(tmp_path, dataset_dir, tiny_config_file):
    out = tmp_path / "run"
    args = _args(dataset_dir, out, tiny_config_file, 3, "--paraphrases", "6", "--paraphrase-prob", "1")
    assert rt_train(args) == 0
    with np.load(out / "paraphrases.npz") as stored:
        instructions, texts, owner = stored["instructions"].tolist(), stored["texts"].tolist(), stored["owner"]
        embeddings = stored["embeddings"]
    assert instructions and len(texts) == len(owner) == len(embeddings) == 6 * len(instructions)
    assert not set(texts) & set(instructions)
    config = TrainConfig(**json.loads((out / "train_config.json").read_text()))
    dataset = RECIPES["rt1"].make_dataset(config, RT1.from_pretrained(out))
    item = dataset[0]
    assert any(
        np.array_equal(item["text_embedding"].numpy(), e) for e in embeddings[owner == dataset.instruction_id[0]]
    )


@pytest.fixture(scope="module")
def small_frames_dir(tmp_path_factory):
    """A second dataset, stored at another frame size than the model's: a mixture resizes it on read."""
    root = tmp_path_factory.mktemp("mixture_data")
    write_synthetic_episodes(root / "bags", episodes=2, steps=6, seed=7, frame_size=(40, 48))
    build_dataset(
        [root / "bags"], root / "dataset", 24, lambda f: resize_frame(f, 24), default_text_encoder(), progress=False
    )
    return root / "dataset"


def test_a_mixture_splits_every_batch_between_its_datasets_by_weight(
    tmp_path, dataset_dir, small_frames_dir, tiny_config, tiny_config_file
):
    out = tmp_path / "run"
    data = [f"{dataset_dir}:3", f"{small_frames_dir}:1"]
    args = _args(data[0], out, tiny_config_file, 3, "--paraphrases", "2", "--paraphrase-prob", "1")
    args[args.index("--data") + 1 : args.index("--data") + 2] = data
    assert rt_train(args) == 0
    config = TrainConfig(**json.loads((out / "train_config.json").read_text()))
    assert config.data == data
    dataset = RECIPES["rt1"].make_dataset(config, RT1.from_pretrained(out))
    assert isinstance(dataset, MixtureDataset) and dataset.weights == [0.75, 0.25]
    sampler = RECIPES["rt1"].make_batch_sampler(config, dataset, 0, 1)
    first_part = len(dataset.datasets[0])
    for batch in list(sampler)[:4]:
        assert len(batch) == 4 and sum(i >= first_part for i in batch) == 1
    second = dataset[first_part]
    assert second["images"].shape[1:] == (tiny_config.image_size, tiny_config.image_size, 3)
    with np.load(out / "paraphrases.npz") as stored:
        own = stored["embeddings"][
            stored["owner"]
            == stored["instructions"]
            .tolist()
            .index(dataset.datasets[1].data.index.instructions[dataset.datasets[1].instruction_id[0]])
        ]
    assert any(np.array_equal(second["text_embedding"].numpy(), e) for e in own)


def test_a_mixture_weight_that_is_not_a_positive_number_is_refused(tmp_path, dataset_dir, tiny_config_file, capsys):
    args = _args(f"{dataset_dir}:0", tmp_path / "run", tiny_config_file, 1)
    assert rt_train(args) == 1
    assert "weight must be a positive number" in capsys.readouterr().err
