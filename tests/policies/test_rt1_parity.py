"""Numeric parity with Google's TensorFlow RT-1 on its reference data (REFERENCE below, kept outside the repository).

The reference is the released architecture with 2 transformer layers and random weights. One full-sequence
forward pass (2 windows x 6 frames) is captured stage by stage
with hooks, so a failing test names the first stage that drifts. Quirk found here: the reference network
was built without ImageNet weights, so its Keras Normalization layer never applied the ImageNet mean and
variance stored in the checkpoint (it computes with the 0 / 1 it was built with); the conversion is told
so (`stem_normalization=False`, `--no-stem-normalization`).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.rt1.config import rt1_preset
from rt_policy_node.policies.rt1.convert import main as rt_convert
from rt_policy_node.policies.rt1.image import preprocess
from rt_policy_node.policies.rt1.masks import rt1_attention_mask
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.rt1.policy import RT1Policy
from rt_policy_node.policies.rt1.weights_tf import config_from_tf, state_dict_from_tf

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "rt1_tf"
pytestmark = [
    pytest.mark.skipif(
        not REFERENCE.is_dir(), reason=f"RT-1 reference data not found at {REFERENCE} (shared/ beside the repo)"
    ),
    pytest.mark.usefixtures("one_thread"),
]
# Reference action keys -> the tokenizer's field names.
ACTION_FIELDS = {
    "terminate_episode": "mode",
    "world_vector": "world_vector",
    "rotation_delta": "rotation_delta",
    "gripper_closedness_action": "gripper_closedness",
    "base_displacement_vertical_rotation": "base_rotation",
    "base_displacement_vector": "base_displacement",
}
LOGITS_ATOL = 1e-4


class ZeroEncoder:
    """The reference gives each frame its own embedding (passed to `RT1Policy.step`); the instruction's is unused."""

    dim = 512

    def embed(self, text: str) -> np.ndarray:
        return np.zeros(512, np.float32)


def close(ours: np.ndarray, reference: np.ndarray, what: str, rtol: float = 2e-5) -> None:
    """Equal within float32 accumulation error, relative to the largest reference value."""
    scale = float(np.abs(reference).max())
    error = float(np.abs(ours - reference).max())
    assert error <= rtol * scale + 1e-6, f"{what}: max |diff| {error:.3g} (reference scale {scale:.3g})"


@pytest.fixture(scope="module")
def inputs():
    return dict(np.load(REFERENCE / "inputs.npz"))


@pytest.fixture(scope="module")
def outputs():
    return dict(np.load(REFERENCE / "outputs.npz"))


@pytest.fixture(scope="module")
def variables():
    """weights.npz keyed by checkpoint key (variables.json pairs each TF variable name with its key)."""
    weights = np.load(REFERENCE / "weights.npz")
    entries = json.loads((REFERENCE / "variables.json").read_text())
    return {entry["checkpoint_key"]: weights[entry["name"]] for entry in entries}


@pytest.fixture(scope="module")
def model(variables):
    config = config_from_tf(variables)
    model = RT1(config)
    model.load_weights(state_dict_from_tf(variables, config, stem_normalization=False))
    return model.eval()


@pytest.fixture(scope="module")
def captured(model, inputs):
    """Every stage of one full-sequence forward pass; EfficientNet stages for frame 0 of each window."""
    encoder, seen = model.image_encoder, {}
    probes = {"stem_activation": encoder.stem, "top_activation": encoder.top}
    probes |= {f"{name}_film": block for name, block in zip(encoder.block_names, encoder.blocks, strict=True)}
    first_frames = [0, 6]  # frame 0 of window 0 and of window 1 in the (window, step) batch

    def keep(name, reduce):
        return lambda module, args, out: seen.__setitem__(name, reduce(out[0] if isinstance(out, tuple) else out))

    hooks = [m.register_forward_hook(keep(n, lambda x: x[first_frames].mean((2, 3)))) for n, m in probes.items()]
    hooks.append(encoder.top.register_forward_hook(keep("features", lambda x: x[first_frames].permute(0, 2, 3, 1))))
    hooks.append(encoder.register_forward_hook(keep("film_tokens", lambda x: x.flatten(2).transpose(1, 2))))
    hooks.append(model.token_learner.register_forward_hook(keep("token_learner", lambda x: x)))
    hooks.append(model.transformer.register_forward_hook(keep("transformer", lambda x: x)))
    hooks.append(model.transformer.register_forward_pre_hook(lambda m, args: seen.__setitem__("input", args[0])))
    layers = model.transformer.layers
    hooks.append(layers[0].register_forward_pre_hook(lambda m, args: seen.__setitem__("hidden_0", args[0])))
    hooks += [layer.register_forward_hook(keep(f"hidden_{i + 1}", lambda x: x)) for i, layer in enumerate(layers)]
    with torch.no_grad():
        seen["action_logits"] = model(
            torch.from_numpy(inputs["image"]), torch.from_numpy(inputs["natural_language_embedding"])
        )
    for hook in hooks:
        hook.remove()
    return {k: v.numpy() for k, v in seen.items()}


def test_attention_mask_and_logit_positions(model, outputs):
    mask = rt1_attention_mask(time_steps=6, image_tokens=8, action_tokens=11)
    assert np.array_equal(mask.numpy(), outputs["attention_mask"].astype(bool))
    assert np.array_equal(model._logit_positions(6).numpy(), outputs["action_token_positions"] - 1)


def test_resize_is_bit_exact(inputs, outputs):
    ours = preprocess(torch.from_numpy(inputs["image"][0, 0]), 300)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(ours, outputs["image_preprocessed_b0f0"])


def test_efficientnet_every_block(captured, outputs):
    """Per-channel means after the stem, each MBConv block + FiLM, and the top: names the first that drifts."""
    names = [k.split("/", 1)[1] for k in outputs if k.startswith("effnet_probe_chmean/")]
    assert len(names) == 28
    for name in names:
        close(captured[name], outputs[f"effnet_probe_chmean/{name}"], f"EfficientNet stage {name}")


def test_efficientnet_features_film_tokens_and_token_learner(captured, outputs):
    close(captured["features"], outputs["effnet_features_frame0"], "top_activation (frame 0)", rtol=2e-5)
    close(captured["film_tokens"].reshape(2, 6, 81, 512), outputs["film_image_tokens"], "1x1 conv + FiLM tokens")
    close(captured["token_learner"].reshape(2, 6, 8, 512), outputs["token_learner_tokens"], "TokenLearner tokens")


def test_transformer_input_and_every_layer(captured, outputs):
    close(captured["input"], outputs["transformer_input_tokens"], "token sequence (image tokens, zero action slots)")
    for i in range(3):
        close(captured[f"hidden_{i}"], outputs[f"transformer_hidden_{i}"], f"residual stream after layer {i}")


def test_transformer_logits_and_every_token(captured, outputs):
    error = np.abs(captured["transformer"] - outputs["transformer_output_logits"]).max()
    assert error < LOGITS_ATOL, f"transformer output logits: max |diff| {error:.3g}"
    error = np.abs(captured["action_logits"] - outputs["action_logits"]).max()
    assert error < LOGITS_ATOL, f"action logits: max |diff| {error:.3g}"
    assert np.array_equal(captured["action_logits"].argmax(-1), outputs["action_predicted_tokens"])


def test_detokenized_actions(captured, outputs):
    tokenizer = ActionTokenizer()
    decoded = tokenizer.decode(captured["action_logits"].argmax(-1))
    for key, name in ACTION_FIELDS.items():
        reference = outputs[f"detokenized_all_steps_{key}"]
        if name == "mode":
            # The reference one-hot is all zeros for an out-of-range token; ours decodes that to TERMINATE (0).
            expected = np.where(reference.any(-1), reference.argmax(-1), 0)
            assert np.array_equal(decoded[name], expected)
        else:
            assert np.array_equal(decoded[name], reference), key
        assert np.array_equal(outputs[f"detokenized_{key}"], reference[:, -1])


def test_action_labels_with_the_originals_floor_rounding(inputs, outputs):
    actions = {name: inputs[f"action_{key}"] for key, name in ACTION_FIELDS.items()}
    actions["mode"] = actions["mode"].argmax(-1)
    tokens = ActionTokenizer(rounding="floor").encode(actions)
    assert np.array_equal(tokens, outputs["action_labels"])


def test_loss_matches_the_reference_definition(model, captured, outputs):
    logits = torch.from_numpy(captured["action_logits"])
    labels = torch.from_numpy(outputs["action_labels"]).long()
    # The reference's action_loss[b, t]: mean over the 11 tokens of CE / (B * T * 19).
    ce = F.cross_entropy(logits.permute(0, 3, 1, 2), labels, reduction="none")
    close((ce / (2 * 6 * 19)).mean(-1).numpy(), outputs["action_loss"], "action_loss", rtol=1e-5)
    # RT1.loss is the mean CE over all tokens, with the mode's impossible values masked out of the softmax.
    reference = torch.from_numpy(outputs["action_logits"]).clone()
    reference[..., 0, 3:] = float("-inf")
    expected = F.cross_entropy(reference.permute(0, 3, 1, 2), labels)
    loss, _ = model.loss(logits, labels)
    assert abs(loss.item() - expected.item()) < 1e-5


def test_streaming_policy_from_a_saved_checkpoint_reproduces_the_single_step_path(model, inputs, outputs, tmp_path):
    model.save_pretrained(tmp_path / "rt1_reference")
    policy = RT1Policy.from_pretrained(tmp_path / "rt1_reference", text_encoder=ZeroEncoder())
    for b in range(2):
        policy.reset(f"episode {b}")
        for s in range(8):
            frame = inputs["step_image"][b, s]
            uint8 = np.round(frame * 255).astype(np.uint8)
            assert np.array_equal(uint8.astype(np.float32) / np.float32(255), frame), "reference frames are uint8/255"
            text = torch.from_numpy(inputs["step_natural_language_embedding"][b, s])
            tokens, logits = policy.step(uint8, text)
            where = f"episode {b}, step {s}"
            error = np.abs(logits.numpy() - outputs["step_action_logits"][b, s]).max()
            assert error < LOGITS_ATOL, f"{where}: max |diff| {error:.3g}"
            reference_tokens = outputs["step_predicted_tokens"][b, s]
            assert np.array_equal(tokens[1:], reference_tokens[1:]), where
            # Ours picks the mode among its 3 classes; the reference's argmax may pick an impossible value.
            assert tokens[0] == outputs["step_action_logits"][b, s, 0, :3].argmax(), where
            window = outputs["step_state_context_image_tokens"][b, s][: min(s + 1, 6)]
            close(policy.window.numpy(), window, f"{where}: the window of image tokens")


def test_tf_checkpoint_conversion_end_to_end(model, inputs, outputs, tmp_path, capsys):
    """`rt-convert rt1-tf` on the reference TF checkpoint gives the same weights and the same logits."""
    out = tmp_path / "converted"
    checkpoint = REFERENCE / "tf_checkpoint" / "rt1_ref"
    assert rt_convert(["rt1-tf", str(checkpoint), "--out", str(out), "--no-stem-normalization"]) == 0
    assert "2 layers" in capsys.readouterr().out
    converted = RT1.from_pretrained(out)
    assert converted.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    with torch.no_grad():
        logits = converted(
            torch.from_numpy(inputs["image"][:1]), torch.from_numpy(inputs["natural_language_embedding"][:1])
        )
    assert np.abs(logits.numpy() - outputs["action_logits"][:1]).max() < LOGITS_ATOL
    assert np.array_equal(logits.argmax(-1).numpy(), outputs["action_predicted_tokens"][:1])

    assert rt_convert(["rt1-tf", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "no TensorFlow checkpoint" in capsys.readouterr().err


def test_config_is_inferred_from_the_variables(variables):
    config = config_from_tf(variables)
    assert config == rt1_preset("rt1_reference")
    assert (config.efficientnet, config.image_size, config.num_layers, config.time_steps) == ("b3", 300, 2, 6)
    assert (config.num_heads, config.head_dim, config.model_dim, config.image_tokens) == (8, 128, 512, 8)
    assert config.action_rounding == "floor"


def test_the_released_rt1main_variables_map_onto_the_rt1_preset():
    """Every variable of Google's trained rt1main checkpoint (names and shapes listed beside the reference)."""
    variables = {}
    for line in (REFERENCE / "released_rt1main_variables.tsv").read_text().splitlines()[1:]:
        name, shape = line.split("\t")
        key = name.replace("agent/_actor_network/", "network/")
        variables[key] = np.broadcast_to(np.float32(0), json.loads(shape))
    config = config_from_tf(variables)
    assert config.num_layers == 8
    assert dataclasses.replace(config, action_rounding="round") == rt1_preset("rt1")
    state = state_dict_from_tf(variables, config)
    with torch.device("meta"):
        assert state.keys() == RT1(config).state_dict().keys()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.pop("network/_transformer/_layers/1/ff/bias"), "missing network/_transformer/_layers/1/ff/bias"),
        (
            lambda v: v.__setitem__("network/_transformer/_output_tokens/kernel", np.zeros((512, 300), np.float32)),
            r"network/_transformer/_output_tokens/kernel has shape \(512, 300\)",
        ),
        (
            lambda v: v.__setitem__("network/_transformer/_extra/kernel", np.zeros(3, np.float32)),
            "unexpected network/_transformer/_extra/kernel",
        ),
    ],
)
def test_a_checkpoint_that_does_not_fit_names_the_variable(variables, change, message):
    broken = dict(variables)
    change(broken)
    with pytest.raises(ValueError, match=message):
        state_dict_from_tf(broken, config_from_tf(variables))
