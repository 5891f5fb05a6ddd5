"""RT-1: camera frames + instruction embedding -> 11 action tokens per step (Brohan et al., 2022).

Each frame goes through the FiLM-EfficientNet (conditioned on the instruction embedding) and TokenLearner,
giving `image_tokens` tokens per frame. A window of `time_steps` frames is laid out as
`[instruction?] + per step: [image tokens, action tokens]` and run through the Transformer; the logits for
action token k of step t are read one position before that token (see masks.py for the two attention
patterns and what the action positions hold in each).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import save_file
from torch import nn

from rt_policy_node.policies.checkpoint import load_safetensors, read_json, refuse_pickles
from rt_policy_node.policies.rt1.config import RT1Config
from rt_policy_node.policies.rt1.efficientnet import FiLMEfficientNet
from rt_policy_node.policies.rt1.image import center_crop, preprocess
from rt_policy_node.policies.rt1.masks import attention_mask
from rt_policy_node.policies.rt1.token_learner import TokenLearner
from rt_policy_node.policies.rt1.transformer import Transformer

CONFIG_FILE = "config.json"
# How to turn a pickled state dict into this checkpoint's weights file (quoted when only a pickle is found).
CONVERT_PICKLE = (
    'python -c "import torch; from safetensors.torch import save_file; '
    "save_file(torch.load('{file}', weights_only=True), '{directory}/model.safetensors')\""
)
WEIGHTS_FILE = "model.safetensors"


class RT1(nn.Module):
    """FiLM-EfficientNet + TokenLearner + decoder-only Transformer over a window of frames (see the module doc)."""

    def __init__(self, config: RT1Config) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = FiLMEfficientNet(
            config.width_coefficient,
            config.depth_coefficient,
            config.text_dim,
            config.token_dim,
            config.drop_connect_rate,
            config.efficientnet_output_stride,
        )
        self.token_learner = TokenLearner(config.token_dim, config.image_tokens, config.token_learner_hidden)
        # The reference builds this embedding but feeds zeros in its place; RT-1 mode keeps it only so
        # released checkpoints load, and does not train it.
        self.action_emb = nn.Embedding(config.vocab_size, config.token_dim)
        self.action_emb.requires_grad_(config.attention == "prefix_lm")
        self.instruction_proj = nn.Linear(config.text_dim, config.token_dim) if config.instruction_token else None
        self.transformer = Transformer(
            config.token_dim,
            config.model_dim,
            config.num_layers,
            config.num_heads,
            config.head_dim,
            config.sequence_length,
            config.vocab_size,
            config.feed_forward,
            config.swiglu_hidden_dim,
            config.dropout,
        )
        mask = attention_mask(
            config.attention, config.time_steps, config.image_tokens, config.action_tokens, config.instruction_token
        )
        self.register_buffer("attn_mask", mask, persistent=False)
        valid = torch.from_numpy(config.tokenizer().valid_token_mask())
        self.register_buffer("valid_tokens", valid, persistent=False)
        discrete = [dim.classes > 0 for dim in config.action_spec for _ in range(dim.size)]
        self.register_buffer("discrete_tokens", torch.tensor(discrete), persistent=False)

    # -- images -> tokens ---------------------------------------------------------------------------

    def encode_images(self, images: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
        """Frames `[B, T, H, W, 3]` (uint8, or float in [0, 1]) -> image tokens `[B, T, image_tokens, token_dim]`."""
        if images.ndim != 5:
            raise ValueError(f"images must be [B, T, H, W, 3], got shape {tuple(images.shape)}")
        batch, steps = images.shape[:2]
        if self.config.augmentation == "random_crop":
            images = center_crop(images, self.config.crop_size)
        x = preprocess(images, self.config.image_size).contiguous(memory_format=torch.channels_last)
        context = rearrange(self._per_frame(text_embedding, batch, steps), "b t e -> (b t) e")
        features = self.image_encoder(x, context)
        tokens = self.token_learner(rearrange(features, "n d h w -> n (h w) d"))
        return rearrange(tokens, "(b t) k d -> b t k d", b=batch)

    def _per_frame(self, text_embedding: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
        if text_embedding.ndim == 2:
            text_embedding = text_embedding[:, None].expand(-1, steps, -1)
        if text_embedding.shape != (batch, steps, self.config.text_dim):
            raise ValueError(
                f"text_embedding must be [B, {self.config.text_dim}] or [B, T, {self.config.text_dim}] "
                f"with B={batch}, T={steps}; got {tuple(text_embedding.shape)}"
            )
        return text_embedding.to(torch.float32)

    # -- tokens -> logits ---------------------------------------------------------------------------

    def forward(
        self, images: torch.Tensor, text_embedding: torch.Tensor, action_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits `[B, T, action_tokens, vocab]` for every step of the window (raw: invalid values not masked).

        `action_tokens` `[B, T, 11]` are the teacher-forced inputs of the prefix-LM mode; RT-1 mode ignores them.
        """
        return self.predict(self.encode_images(images, text_embedding), text_embedding, action_tokens)

    def predict(
        self, image_tokens: torch.Tensor, text_embedding: torch.Tensor, action_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The Transformer half of `forward`: image tokens `[B, T, k, d]` -> logits `[B, T, 11, vocab]`."""
        cfg = self.config
        batch, steps = image_tokens.shape[:2]
        if steps > cfg.time_steps:
            raise ValueError(f"window of {steps} steps is longer than the model's {cfg.time_steps}")
        if cfg.attention == "rt1":
            actions = image_tokens.new_zeros(batch, steps, cfg.action_tokens, cfg.token_dim)
        elif action_tokens is None:
            raise ValueError("the prefix_lm model needs action_tokens [B, T, 11] (teacher forcing)")
        else:
            actions = self.action_emb(action_tokens).to(image_tokens.dtype)
        x = rearrange(torch.cat([image_tokens, actions], dim=2), "b t n d -> b (t n) d")
        if self.instruction_proj is not None:
            instruction = self.instruction_proj(self._instruction(text_embedding))
            x = torch.cat([instruction[:, None].to(x.dtype), x], dim=1)
        n = x.shape[1]
        logits, _ = self.transformer(x, torch.arange(n, device=x.device), self.attn_mask[:n, :n])
        logits = logits[:, self._logit_positions(steps)]
        return rearrange(logits, "b (t a) v -> b t a v", t=steps)

    def _instruction(self, text_embedding: torch.Tensor) -> torch.Tensor:
        return (text_embedding[:, -1] if text_embedding.ndim == 3 else text_embedding).to(torch.float32)

    def _step_start(self, step: int) -> int:
        return int(self.config.instruction_token) + step * self.config.tokens_per_step

    def _logit_positions(self, steps: int) -> torch.Tensor:
        """Where each action token's logits are read: one position before the token itself."""
        cfg = self.config
        first = [self._step_start(t) + cfg.image_tokens - 1 for t in range(steps)]
        return torch.tensor([p + k for p in first for k in range(cfg.action_tokens)], device=self.attn_mask.device)

    def constrain(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits `[..., 11, vocab]` with values no action token may take (mode >= 3) set to -inf."""
        return logits.masked_fill(~self.valid_tokens, float("-inf"))

    # -- training ------------------------------------------------------------------------------------

    def loss(
        self, logits: torch.Tensor, tokens: torch.Tensor, step_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean cross-entropy over the action tokens of real steps (`step_mask` `[B, T]`, True = real).

        Invalid token values are masked out of the softmax (the mode is a 3-class target). With
        `loss_last_step_only`, only each window's last real step counts. Returns the loss and detached
        metrics: token and whole-action accuracy, and the accuracy per action field.
        """
        batch, steps, num_tokens, vocab = logits.shape
        if tokens.shape != (batch, steps, num_tokens):
            raise ValueError(f"tokens must be {(batch, steps, num_tokens)}, got {tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= vocab or not self.valid_tokens[torch.arange(num_tokens), tokens].all():
            raise ValueError("tokens hold values outside the action spec (e.g. a mode >= 3)")
        weight = torch.ones(batch, steps, dtype=torch.bool, device=logits.device) if step_mask is None else step_mask
        weight = weight.bool()
        if self.config.loss_last_step_only:
            weight = weight & (weight.long().cumsum(1) == weight.long().sum(1, keepdim=True))
        logits = self.constrain(logits.float())
        if self.config.label_sigma_bins > 0:
            log_probs = logits.log_softmax(-1).masked_fill(~self.valid_tokens, 0.0)
            ce = -(self.soft_labels(tokens) * log_probs).sum(-1)
        else:
            ce = F.cross_entropy(rearrange(logits, "b t a v -> (b t a) v"), tokens.flatten(), reduction="none")
            ce = ce.view(batch, steps, num_tokens)
        count = weight.sum().clamp_min(1)
        loss = (ce * weight[..., None]).sum() / (count * num_tokens)

        with torch.no_grad():
            correct = (logits.argmax(-1) == tokens) & weight[..., None]
            metrics = {
                "token_accuracy": correct.sum() / (count * num_tokens),
                "action_accuracy": (correct.all(-1) & weight).sum() / count,
            }
            start = 0
            for dim in self.config.action_spec:
                metrics[f"accuracy/{dim.name}"] = correct[..., start : start + dim.size].sum() / (count * dim.size)
                start += dim.size
        return loss, metrics

    def soft_labels(self, tokens: torch.Tensor) -> torch.Tensor:
        """Target distributions `[..., 11, vocab]`: a Gaussian of `label_sigma_bins` around each continuous
        dimension's token, cut to its valid bins and renormalised; one-hot for discrete fields (the mode)."""
        bins = torch.arange(self.config.vocab_size, device=tokens.device, dtype=torch.float32)
        distance = bins - tokens[..., None].float()
        soft = torch.exp(-0.5 * (distance / self.config.label_sigma_bins) ** 2) * self.valid_tokens
        soft = soft / soft.sum(-1, keepdim=True)
        one_hot = F.one_hot(tokens, self.config.vocab_size).float()
        return torch.where(self.discrete_tokens[:, None], one_hot, soft)

    # -- inference -----------------------------------------------------------------------------------

    def decode_last_step(
        self, image_tokens: torch.Tensor, text_embedding: torch.Tensor, use_cache: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action tokens `[B, 11]` of the window's last step, and their raw logits `[B, 11, vocab]`.

        RT-1 mode predicts all tokens in one pass. Prefix-LM mode decodes them one at a time, each fed
        back as the next position's input; with `use_cache` the context is run once and each new token
        reuses its keys and values, otherwise the whole window is re-run for every token. Tokens are
        the argmax over the values valid for their position.
        """
        if self.config.attention == "rt1":
            logits = self.predict(image_tokens, text_embedding)[:, -1]
            return self.constrain(logits).argmax(-1), logits
        if use_cache:
            return self._decode_cached(image_tokens, text_embedding)
        return self._decode_uncached(image_tokens, text_embedding)

    def _decode_uncached(self, image_tokens: torch.Tensor, text_embedding: torch.Tensor):
        batch, steps = image_tokens.shape[:2]
        actions = torch.zeros(batch, steps, self.config.action_tokens, dtype=torch.long, device=image_tokens.device)
        all_logits = []
        for k in range(self.config.action_tokens):
            logits = self.predict(image_tokens, text_embedding, actions)[:, -1, k]
            actions[:, -1, k] = self._pick(logits, k)
            all_logits.append(logits)
        return actions[:, -1], torch.stack(all_logits, dim=1)

    def _pick(self, logits: torch.Tensor, k: int) -> torch.Tensor:
        return logits.masked_fill(~self.valid_tokens[k], float("-inf")).argmax(-1)

    def _decode_cached(self, image_tokens: torch.Tensor, text_embedding: torch.Tensor):
        # Earlier steps' action positions are visible to no position of the last step under the prefix-LM
        # mask, so the context is the instruction and the image tokens alone, at their window positions.
        cfg = self.config
        steps = image_tokens.shape[1]
        device = image_tokens.device
        positions = [self._step_start(t) + j for t in range(steps) for j in range(cfg.image_tokens)]
        x = rearrange(image_tokens, "b t k d -> b (t k) d")
        if self.instruction_proj is not None:
            positions = [0, *positions]
            x = torch.cat([self.instruction_proj(self._instruction(text_embedding))[:, None].to(x.dtype), x], dim=1)
        keys = torch.tensor(positions, device=device)
        logits, cache = self.transformer(x, keys, self.attn_mask[keys][:, keys])
        step_logits = [logits[:, -1]]
        tokens = [self._pick(step_logits[-1], 0)]
        first_slot = self._step_start(steps - 1) + cfg.image_tokens
        for k in range(1, cfg.action_tokens):
            position = torch.tensor([first_slot + k - 1], device=device)
            keys = torch.cat([keys, position])
            inputs = self.action_emb(tokens[-1])[:, None].to(x.dtype)
            logits, cache = self.transformer(inputs, position, self.attn_mask[position][:, keys], cache)
            step_logits.append(logits[:, -1])
            tokens.append(self._pick(step_logits[-1], k))
        return torch.stack(tokens, dim=1), torch.stack(step_logits, dim=1)

    # -- checkpoints ---------------------------------------------------------------------------------

    def save_pretrained(self, path: str | Path) -> None:
        """Writes `config.json` (with `"policy": "rt1"`) and `model.safetensors` into directory `path`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, path / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> RT1:
        """Loads a `save_pretrained` directory in eval mode; weights that do not fit the config are an error."""
        path = Path(path)
        refuse_pickles(path, CONVERT_PICKLE)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"no RT-1 checkpoint at {path}: {name} is missing")
        data = read_json(path / CONFIG_FILE)
        try:
            config = RT1Config.from_dict(data)
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(f"{path / CONFIG_FILE}: not an RT-1 config ({err})") from None
        model = cls(config)
        model.load_weights(load_safetensors(path / WEIGHTS_FILE), source=str(path / WEIGHTS_FILE))
        return model.to(device).eval()

    def load_weights(self, state: dict[str, torch.Tensor], source: str = "weights") -> None:
        """`load_state_dict`, but a mismatch names the first tensor that does not fit and why."""
        expected = self.state_dict()
        for key, tensor in expected.items():
            if key not in state:
                raise ValueError(f"{source} does not match the config: missing {key} {tuple(tensor.shape)}")
            if tuple(state[key].shape) != tuple(tensor.shape):
                raise ValueError(
                    f"{source} does not match the config: {key} has shape {tuple(state[key].shape)}, "
                    f"the config needs {tuple(tensor.shape)}"
                )
        unexpected = sorted(set(state) - set(expected))
        if unexpected:
            raise ValueError(f"{source} does not match the config: unexpected {unexpected[0]}")
        self.load_state_dict(state)
