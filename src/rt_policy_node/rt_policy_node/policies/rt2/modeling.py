"""The RT-2 model: a vision-language backbone whose answers include actions, with its codec and constraint.

`RT2Model` is what training and inference share. Training calls the module on a collated batch and gets
`(loss, metrics)` (so a DistributedDataParallel wrapper works unchanged); inference asks it for an answer
to one prompt and gets back the action's tokens and, in chain-of-thought mode, the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, LogitsProcessorList

from rt_policy_node.policies.action_tokenizer import ActionTokenizer, spec_from_json
from rt_policy_node.policies.rt2.backbones import BackboneIO, load_backbone, save_backbone
from rt_policy_node.policies.rt2.codec import ActionTextCodec, Strategy
from rt_policy_node.policies.rt2.config import BACKBONE_DIR, RT2Config
from rt_policy_node.policies.rt2.constrained import ActionConstraint, find_marker
from rt_policy_node.policies.rt2.processing import IGNORE, RT2Collator
from rt_policy_node.policies.rt2.prompts import ACTION_MARKER, parse_plan

# Collated keys that describe the batch rather than feed the backbone.
BATCH_ONLY_KEYS = ("labels", "action_mask", "is_robot")


@dataclass
class Answer:
    """One decoded answer: the action's tokens (bins), the generated ids and the plan (chain of thought)."""

    tokens: np.ndarray
    ids: list[int]
    plan: str | None = None


class RT2Model(nn.Module):
    """Backbone + action codec + constrained decoding, configured by an `RT2Config`."""

    def __init__(self, vlm: Any, io: BackboneIO, config: RT2Config) -> None:
        super().__init__()
        self.vlm = vlm
        self.io = io
        self.config = config
        self.action_tokenizer = ActionTokenizer(spec_from_json(config.action_spec), config.rounding)
        self.codec = ActionTextCodec.from_json(config.codec, self.action_tokenizer)
        self.marker = io.text_ids(ACTION_MARKER)
        self.special_ids = io.special_ids
        vocab_size = vlm.get_output_embeddings().weight.shape[0]
        self.register_buffer("allowed", self.codec.allowed_mask(vocab_size), persistent=False)

    @classmethod
    def from_backbone(
        cls,
        vlm: Any,
        io: BackboneIO,
        strategy: Strategy = "integers",
        corpus: Iterable[str] | None = None,
        **config: Any,
    ) -> RT2Model:
        """Wraps a backbone for RT-2, choosing the codec's ids (`least_frequent` needs a text corpus)."""
        vocab_size = vlm.get_output_embeddings().weight.shape[0]
        if strategy == "integers":
            codec = ActionTextCodec.integers(io.tokenizer)
        elif strategy == "least_frequent":
            if corpus is None:
                raise ValueError("the 'least_frequent' codec strategy needs a text corpus to count tokens in")
            marker = io.text_ids(ACTION_MARKER)
            codec = ActionTextCodec.least_frequent(io.tokenizer, corpus, vocab_limit=vocab_size, exclude=marker)
        else:
            raise ValueError(f"unknown codec strategy {strategy!r}")
        return cls(vlm, io, RT2Config(codec=codec.to_json(), **config))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> RT2Model:
        config = RT2Config.load(path)
        vlm, io = load_backbone(config.backbone_path(path), dtype=getattr(torch, config.dtype))
        return cls(vlm, io, config).to(device).eval()

    def save_pretrained(self, path: str | Path) -> None:
        """Writes config.json and the backbone (safetensors) into `path`; `load_policy(path)` reads it back."""
        path = Path(path)
        save_backbone(self.vlm, self.io, path / BACKBONE_DIR)
        self.config.backbone = BACKBONE_DIR
        self.config.save(path)

    @property
    def device(self) -> torch.device:
        return self.allowed.device

    def collator(self) -> RT2Collator:
        return RT2Collator(self.io, self.codec, plan=self.config.plan)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean cross-entropy over answer tokens, and detached metrics for the log.

        Metrics: `token_accuracy` (teacher-forced argmax over all answer tokens), `robot_fraction` and, when
        the batch holds robot examples, `action_accuracy` (over action ids only).
        """
        inputs = {k: v.to(self.device) for k, v in batch.items() if k not in BATCH_ONLY_KEYS}
        logits = self.vlm(**inputs, use_cache=False).logits[:, :-1].float()
        labels = batch["labels"][:, 1:].to(self.device)
        loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE)
        with torch.no_grad():
            correct = logits.argmax(-1) == labels
            action = batch["action_mask"][:, 1:].to(self.device)
            metrics = {
                "token_accuracy": correct[labels != IGNORE].float().mean(),
                "robot_fraction": batch["is_robot"].float().mean(),
            }
            if action.any():
                metrics["action_accuracy"] = correct[action].float().mean()
        return loss, metrics

    loss = forward

    def prompt_inputs(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        """The backbone's inputs for one image and prompt, on the model's device and dtype."""
        dtype = self.vlm.dtype
        inputs = self.io.encode_prompt(image, prompt)
        return {k: v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device) for k, v in inputs.items()}

    @torch.no_grad()
    def generate(
        self,
        inputs: dict[str, torch.Tensor],
        constrained: bool = True,
        use_cache: bool = True,
        max_new_tokens: int | None = None,
    ) -> torch.Tensor:
        """New ids after the prompt `[batch, new]`, constrained unless told not; the KV cache is for speed only.

        `max_new_tokens` cuts the answer short (for timing prefill against decoding); by default the whole
        answer is generated.
        """
        prompt_length = inputs["input_ids"].shape[1]
        plan = self.config.plan
        constraint = ActionConstraint(
            self.allowed,
            prompt_length,
            self.io.eos_id,
            marker=self.marker if plan else None,
            max_plan_tokens=self.config.max_plan_tokens,
            special_ids=self.special_ids,
        )
        sample = self.config.temperature > 0
        generation = GenerationConfig(
            max_new_tokens=constraint.max_new_tokens if max_new_tokens is None else max_new_tokens,
            do_sample=sample,
            temperature=self.config.temperature if sample else None,
            top_k=None,
            top_p=None,
            num_beams=1,
            use_cache=use_cache,
            eos_token_id=self.io.eos_id,
            pad_token_id=self.io.pad_id,
        )
        processors = LogitsProcessorList([constraint] if constrained else [])
        out = self.vlm.generate(**inputs, generation_config=generation, logits_processor=processors)
        return out[:, prompt_length:]

    def answer(self, image: np.ndarray, prompt: str) -> Answer:
        """The constrained answer to one prompt about one image."""
        ids = self.generate(self.prompt_inputs(image, prompt))[0].tolist()
        return self.parse(ids)

    def parse(self, ids: list[int]) -> Answer:
        """Splits a constrained answer into plan and action (it always holds a valid action)."""
        start, plan = 0, None
        if self.config.plan:
            start = find_marker(ids, self.marker)
            if start is None:
                raise ValueError(f"answer {ids} has no action marker")
            plan = parse_plan(self.io.tokenizer.decode(ids[: start - len(self.marker)], skip_special_tokens=True))
        action = ids[start : start + self.codec.num_positions]
        return Answer(tokens=self.codec.decode(action), ids=ids, plan=plan)
