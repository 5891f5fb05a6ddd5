"""RT-1 behaviour on small random models: masks, FiLM, shapes, loss, training, streaming, checkpoints."""

import json
import warnings

import numpy as np
import pytest
import torch

from rt_policy_node.policies.policy import Action, Mode, load_policy
from rt_policy_node.policies.rt1.config import RT1Config, rt1_preset
from rt_policy_node.policies.rt1.efficientnet import FiLMEfficientNet
from rt_policy_node.policies.rt1.film import FiLM
from rt_policy_node.policies.rt1.image import augment, preprocess, resize_bilinear
from rt_policy_node.policies.rt1.masks import prefix_lm_attention_mask, rt1_attention_mask
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.rt1.policy import RT1Policy

TEXT_DIM = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> RT1Config:
    """B0 at 64x64 (a 2x2 feature map), a 2-layer 64-wide transformer: milliseconds per frame."""
    fields = dict(
        efficientnet="b0",
        image_size=64,
        token_dim=32,
        text_dim=TEXT_DIM,
        model_dim=64,
        num_layers=2,
        num_heads=2,
        head_dim=32,
        swiglu_hidden_dim=96,
        dropout=0.0,
        drop_connect_rate=0.0,
    )
    return RT1Config(**(fields | overrides))


def tiny_model(seed: int = 0, **overrides) -> RT1:
    """A random tiny model whose FiLM layers and action embeddings are not the identity/zero they start as."""
    torch.manual_seed(seed)
    model = RT1(tiny_config(**overrides))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, FiLM):
                for p in module.parameters():
                    p.normal_(0, 0.05)
    return model.eval()


class FakeEncoder:
    """Fixed embeddings per instruction, as the injected text encoder of a policy."""

    dim = TEXT_DIM

    def embed(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(sum(map(ord, text)))
        return rng.standard_normal(TEXT_DIM).astype(np.float32)


def frames(n: int, seed: int = 0, size: tuple[int, int] = (48, 80)) -> torch.Tensor:
    return torch.randint(0, 256, (n, *size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# -- masks ---------------------------------------------------------------------------------------------


def test_rt1_mask_is_causal_and_hides_every_action_position_from_actions():
    mask = rt1_attention_mask(time_steps=2, image_tokens=2, action_tokens=3)
    is_action = torch.tensor([0, 0, 1, 1, 1] * 2, dtype=torch.bool)
    assert mask.shape == (10, 10)
    assert not mask.triu(1).any(), "no position may see a later one"
    assert not mask[is_action][:, is_action].any(), "action positions see no action position, not even their own"
    images = ~is_action
    causal = torch.ones(10, 10, dtype=torch.bool).tril()
    assert torch.equal(mask[images], causal[images]), "image positions attend causally to everything before"
    assert mask[4, :2].all() and not mask[4, 5:].any(), "the last action slot of step 0 sees frame 0 only"


def test_prefix_lm_mask_context_free_within_a_frame_actions_causal_within_their_step():
    mask = prefix_lm_attention_mask(time_steps=2, image_tokens=2, action_tokens=3, instruction_token=True)
    # positions: 0 instruction | 1,2 images t0 | 3,4,5 actions t0 | 6,7 images t1 | 8,9,10 actions t1
    assert mask[1, 2] and mask[2, 1], "image tokens of a frame see each other both ways"
    assert mask[6, 1] and not mask[1, 6], "a frame sees earlier frames, never later ones"
    assert mask[:, 0].all(), "everything sees the instruction"
    assert not mask[0, 1:].any(), "the instruction sees nothing after it"
    assert not mask[1, 3] and not mask[6, 3], "context never sees action tokens"
    assert mask[9, 8] and mask[9, 9] and not mask[8, 9], "actions are causal within their step"
    assert not mask[8, 3], "actions do not see earlier steps' actions"
    assert mask[8, 6] and mask[8, 1] and mask[8, 0], "actions see all context up to their step"


# -- building blocks -----------------------------------------------------------------------------------


def test_every_film_layer_is_the_identity_at_init():
    torch.manual_seed(0)
    encoder = FiLMEfficientNet(1.0, 1.0, context_dim=TEXT_DIM, out_dim=32).eval()
    films = [m for m in encoder.modules() if isinstance(m, FiLM)]
    assert len(films) == 16 + 1, "one per MBConv block of B0 and one after the 1x1 conv"
    for film in films:
        x = torch.randn(2, film.add.out_features, 3, 3)
        assert torch.equal(film(x, torch.randn(2, TEXT_DIM)), x)
    images = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        assert torch.equal(encoder(images, torch.randn(2, TEXT_DIM)), encoder(images, torch.randn(2, TEXT_DIM)))


@pytest.mark.parametrize(("output_stride", "side"), [(32, 3), (16, 6), (8, 12)])
def test_output_stride_sets_the_feature_map_of_a_small_image(output_stride, side):
    encoder = FiLMEfficientNet(0.35, 0.35, context_dim=TEXT_DIM, out_dim=16, output_stride=output_stride).eval()
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 96, 96) * 255, torch.zeros(1, TEXT_DIM))
    assert features.shape == (1, 16, side, side)
    with pytest.raises(ValueError, match="output_stride"):
        FiLMEfficientNet(output_stride=4)


def test_300px_image_gives_81_positions_and_8_tokens_per_frame():
    torch.manual_seed(0)
    model = RT1(tiny_config(image_size=300)).eval()
    with torch.no_grad():
        features = model.image_encoder(preprocess(frames(1, size=(256, 320)), 300), torch.zeros(1, TEXT_DIM))
        tokens = model.encode_images(frames(2, size=(256, 320))[None], torch.zeros(1, TEXT_DIM))
    assert features.shape == (1, 32, 9, 9), "stride-2 padding (0,1)/(1,2) gives 9x9, symmetric padding 10x10"
    assert tokens.shape == (1, 2, 8, 32)


def test_resize_keeps_a_same_size_image_and_is_exact_on_constant_images():
    images = torch.rand(2, 3, 64, 64)
    assert torch.equal(resize_bilinear(images, 64), images)
    flat = torch.full((1, 3, 37, 53), 0.25)
    assert torch.equal(resize_bilinear(flat, 64), torch.full((1, 3, 64, 64), 0.25))


def test_preprocess_scales_uint8_and_unit_float_alike_to_0_255():
    image = frames(1)[0]
    from_uint8 = preprocess(image, 64)
    from_float = preprocess(image.float() / 255, 64)
    assert from_uint8.shape == (1, 3, 64, 64)
    assert torch.equal(from_uint8, from_float)
    assert from_uint8.min() >= 0 and from_uint8.max() <= 255 and from_uint8.max() > 200
    with pytest.raises(ValueError, match="RGB"):
        preprocess(torch.zeros(8, 8, 4, dtype=torch.uint8), 64)


def test_pad_then_crop_shifts_each_window_as_a_whole_within_its_padding():
    images = torch.full((4, 3, 64, 80, 3), 7, dtype=torch.uint8)
    out = augment(images, "pad_then_crop", generator=torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 2]), "one offset per window"
    visible = (out == 7).all(-1)
    assert visible.sum((2, 3)).min() > 0.6 * 64 * 80, "at most the padding (8% / 16% a side) is cut off"
    assert set(out.unique().tolist()) <= {0, 7}
    again = augment(images, "pad_then_crop", generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again), "deterministic given the generator"
    crops = augment(images, "random_crop", crop_size=40, generator=torch.Generator().manual_seed(1))
    assert crops.shape == (4, 3, 40, 40, 3)


# -- forward, loss, training ---------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["rt1", "prefix_lm"])
def test_forward_gives_logits_per_step_and_action_token(attention):
    model = tiny_model(attention=attention)
    images = frames(2 * 4).view(2, 4, 48, 80, 3)
    tokens = torch.randint(0, 3, (2, 4, 11))
    with torch.no_grad():
        logits = model(images, torch.randn(2, TEXT_DIM), tokens)
        per_frame_text = model(images, torch.randn(2, 4, TEXT_DIM), tokens)
    assert logits.shape == per_frame_text.shape == (2, 4, 11, 256)
    with pytest.raises(ValueError, match="text_embedding"):
        model(images, torch.randn(3, TEXT_DIM), tokens)


def test_rt1_mode_ignores_action_inputs_and_prefix_lm_uses_them():
    images = frames(3).view(1, 3, 48, 80, 3)
    text = torch.randn(1, TEXT_DIM)
    a, b = torch.zeros(1, 3, 11, dtype=torch.long), torch.randint(0, 3, (1, 3, 11))
    with torch.no_grad():
        rt1 = tiny_model(attention="rt1")
        assert torch.equal(rt1(images, text, a), rt1(images, text, b))
        prefix = tiny_model(attention="prefix_lm")
        assert not torch.allclose(prefix(images, text, a), prefix(images, text, b))
        with pytest.raises(ValueError, match="teacher forcing"):
            prefix(images, text)


def test_loss_masks_padded_steps_and_invalid_mode_values():
    model = tiny_model()
    logits = torch.randn(2, 3, 11, 256)
    tokens = torch.randint(0, 3, (2, 3, 11))
    step_mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, metrics = model.loss(logits, tokens, step_mask)
    changed = logits.clone()
    changed[0, 2] += 100 * torch.randn(11, 256)
    changed[..., 0, 3:] = 1e4  # mode logits of values the mode cannot take
    assert torch.allclose(model.loss(changed, tokens, step_mask)[0], loss)
    assert set(metrics) >= {"token_accuracy", "action_accuracy", "accuracy/mode", "accuracy/world_vector"}
    perfect = torch.nn.functional.one_hot(tokens, 256).float() * 50
    loss, metrics = model.loss(perfect, tokens, step_mask)
    assert loss < 1e-6 and metrics["token_accuracy"] == 1 and metrics["action_accuracy"] == 1
    bad = tokens.clone()
    bad[0, 0, 0] = 5
    with pytest.raises(ValueError, match="mode"):
        model.loss(logits, bad)


def test_last_step_only_loss_uses_each_windows_last_real_step():
    model = tiny_model(loss_last_step_only=True)
    logits = torch.randn(2, 3, 11, 256)
    tokens = torch.randint(0, 3, (2, 3, 11))
    step_mask = torch.tensor([[True, True, True], [True, True, False]])
    loss, _ = model.loss(logits, tokens, step_mask)
    ce = torch.nn.functional.cross_entropy(model.constrain(logits).permute(0, 3, 1, 2), tokens, reduction="none")
    assert torch.allclose(loss, (ce[0, 2].mean() + ce[1, 1].mean()) / 2)


def test_soft_labels_charge_near_misses_less_and_leave_the_mode_one_hot():
    model = tiny_model(label_sigma_bins=2.0)
    tokens = torch.tensor([[[1, 128, 128, 128, 128, 128, 128, 255, 0, 128, 128]]])
    targets = model.soft_labels(tokens)
    assert torch.allclose(targets.sum(-1), torch.ones(1, 1, 11))
    assert torch.equal(targets[0, 0, 0], torch.nn.functional.one_hot(torch.tensor(1), 256).float())
    assert (targets.argmax(-1) == tokens).all(), "the label stays the most likely bin, edges included"

    def loss_when_predicting(offset: int) -> float:
        logits = torch.nn.functional.one_hot((tokens + offset).clamp(0, 255), 256).float() * 20
        logits[..., 0, :] = torch.nn.functional.one_hot(tokens[..., 0], 256).float() * 20
        return model.loss(logits, tokens)[0].item()

    assert loss_when_predicting(0) < loss_when_predicting(1) < loss_when_predicting(5)
    hard = tiny_model()
    logits = torch.randn(2, 3, 11, 256)
    labels = torch.randint(0, 3, (2, 3, 11))
    expected = torch.nn.functional.cross_entropy(hard.constrain(logits).permute(0, 3, 1, 2), labels)
    assert torch.allclose(hard.loss(logits, labels)[0], expected), "sigma 0 is plain cross-entropy"


@pytest.mark.parametrize("attention", ["rt1", "prefix_lm"])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(attention):
    model = tiny_model(attention=attention, dropout=0.1).train()
    images = frames(2 * 2, size=(64, 64)).view(2, 2, 64, 64, 3)
    text = torch.randn(2, TEXT_DIM)
    tokens = torch.randint(0, 3, (2, 2, 11))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        loss, _ = model.loss(model(images, text, tokens), tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert model.action_emb.weight.grad is None if attention == "rt1" else model.action_emb.weight.grad is not None


# -- decoding and streaming ----------------------------------------------------------------------------


@pytest.mark.parametrize("instruction_token", [False, True])
def test_prefix_lm_kv_cache_decode_equals_uncached_autoregressive_decode(instruction_token):
    model = tiny_model(attention="prefix_lm", instruction_token=instruction_token)
    torch.manual_seed(1)
    image_tokens = torch.randn(2, 4, 8, 32)
    text = torch.randn(2, TEXT_DIM)
    with torch.no_grad():
        cached_tokens, cached_logits = model.decode_last_step(image_tokens, text, use_cache=True)
        tokens, logits = model.decode_last_step(image_tokens, text, use_cache=False)
    assert torch.equal(cached_tokens, tokens)
    assert torch.allclose(cached_logits, logits, atol=1e-5)
    assert (tokens[:, 0] < 3).all(), "the mode token is one of its 3 classes"


@pytest.mark.parametrize("attention", ["rt1", "prefix_lm"])
def test_streaming_policy_equals_re_encoding_the_whole_window(attention):
    """One encoder pass per tick (tokens kept in the window) vs encoding every frame of the window again."""
    model = tiny_model(attention=attention)
    policy = RT1Policy(model, FakeEncoder())
    policy.reset("pick up the can")
    text = torch.from_numpy(FakeEncoder().embed("pick up the can"))[None]
    video = frames(9, seed=3)
    for s in range(9):
        tokens, logits = policy.step(video[s])
        window = video[max(0, s - 5) : s + 1][None]
        with torch.no_grad():
            ref_tokens, ref_logits = model.decode_last_step(model.encode_images(window, text), text, use_cache=False)
        assert torch.allclose(logits, ref_logits[0], atol=1e-5), f"step {s}"
        assert np.array_equal(tokens, ref_tokens[0].numpy()), f"step {s}"
        assert policy.window.shape[0] == min(s + 1, 6)


def test_act_returns_actions_and_bad_frames_change_nothing():
    policy = RT1Policy(tiny_model(), FakeEncoder())
    image = frames(1)[0].numpy()
    with pytest.raises(RuntimeError, match="reset"):
        policy.act(image, 0.0)
    policy.reset("open the drawer")
    first = policy.act(image, 0.0)
    assert isinstance(first, Action) and first.tokens.shape == (11,) and first.inference_ms > 0
    assert first.mode in tuple(Mode)
    for bad in (image.astype(np.float32), image[..., :2], image[0]):
        with pytest.raises(ValueError, match="HxWx3 uint8"):
            policy.act(bad, 0.1)
    assert policy.window.shape[0] == 1, "rejected frames never reach the window"
    policy.act(image, 0.2)
    policy.reset("open the drawer")
    again = policy.act(image, 0.0)
    assert np.array_equal(again.tokens, first.tokens), "reset forgets the history; inference is deterministic"
    policy.reset("open the drawer")
    read_only = np.frombuffer(image.tobytes(), np.uint8).reshape(image.shape)  # how a ROS message's buffer arrives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(policy.act(read_only, 0.0).tokens, first.tokens)


# -- configs and checkpoints ---------------------------------------------------------------------------


def test_presets_and_parameter_counts():
    with torch.device("meta"):
        counts = {name: sum(p.numel() for p in RT1(rt1_preset(name)).parameters()) for name in ("rt1", "rt1_small")}
    assert 35.0e6 < counts["rt1"] < 35.5e6, "the paper's ~35M"
    assert counts["rt1_small"] < counts["rt1"] / 3
    assert rt1_preset("rt1_reference").num_layers == 2
    assert rt1_preset("rt1").sequence_length == 114
    with pytest.raises(ValueError, match="preset"):
        rt1_preset("rt9")


def test_config_json_round_trip_and_rejections():
    config = tiny_config(attention="prefix_lm", feed_forward="swiglu", instruction_token=True)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["policy"] == "rt1" and data["action_spec"][0]["name"] == "mode"
    assert RT1Config.from_dict(data) == config
    with pytest.raises(ValueError, match="unknown"):
        RT1Config.from_dict(data | {"num_experts": 4})
    with pytest.raises(ValueError, match="attention"):
        RT1Config.from_dict(data | {"attention": "bidirectional"})
    with pytest.raises(ValueError, match="rt2"):
        RT1Config.from_dict(data | {"policy": "rt2"})


def test_save_load_round_trip_and_mismatched_config(tmp_path):
    model = tiny_model(attention="prefix_lm", feed_forward="swiglu")
    model.save_pretrained(tmp_path / "ckpt")
    loaded = RT1.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    policy = load_policy(tmp_path / "ckpt")
    assert isinstance(policy, RT1Policy)

    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config | {"num_layers": 3}))
    with pytest.raises(ValueError, match=r"missing transformer\.layers\.2"):
        RT1.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config | {"model_dim": 48}))
    with pytest.raises(ValueError, match="has shape"):
        RT1.from_pretrained(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        RT1.from_pretrained(tmp_path)
