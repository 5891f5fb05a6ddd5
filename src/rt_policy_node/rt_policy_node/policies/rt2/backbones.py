"""How each supported vision-language model family is fed, following transformers 5's own conventions.

A `BackboneIO` turns one image and one prompt into the model's prompt inputs (batch of one) and says which
of those inputs run along the token sequence, so answers can be appended as ids and examples padded:

- PaliGemma: "<image>" + prompt through `PaliGemmaProcessor` (it expands the image tokens, inserts BOS after
  them and ends the prefix with "\\n"); `token_type_ids` 0 on the prefix (attended bidirectionally), 1 on the
  answer (causal). The answer follows "\\n" without a space.
- Idefics3 (also SmolVLM v1, whose checkpoints are Idefics3): "<image>" + prompt through `Idefics3Processor`,
  which expands it to <fake_token_around_image><global-img><image>*n<fake_token_around_image>; pixel values
  are `[batch, images, 3, H, W]` with a `pixel_attention_mask`.
- Qwen2-VL: "<|vision_start|><|image_pad|>*n<|vision_end|>" + prompt, where n is the image's patch grid over
  merge_size^2, and `mm_token_type_ids` (1 on image tokens) for the multimodal rotary positions; pixel values
  are flattened patches with `image_grid_thw`. Built from the image processor and tokenizer directly because
  `Qwen2VLProcessor` needs a video processor, which needs torchvision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
from transformers.utils import logging

from rt_policy_node.policies.checkpoint import refuse_pickles

# How to re-save a backbone's pickled weights as safetensors (quoted when only pickles are found).
CONVERT_PICKLE = (
    'python -c "from transformers import AutoModelForImageTextToText as M; '
    "M.from_pretrained('{directory}', use_safetensors=False).save_pretrained('{directory}')\""
)


class BackboneIO(ABC):
    """One family's input conventions; subclasses fill in the image placeholder and extra inputs."""

    model_type: ClassVar[str]
    # Text between the prompt and a free-text answer.
    answer_separator: ClassVar[str] = " "
    # Inputs that run along the sequence: key -> (value on appended answer tokens, value on padding).
    sequence_keys: ClassVar[dict[str, tuple[int, int]]] = {"attention_mask": (1, 0)}

    tokenizer: Any

    @abstractmethod
    def encode_prompt(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        """Model inputs for one HxWx3 uint8 RGB image and one prompt, batch dimension 1."""

    @abstractmethod
    def save_pretrained(self, path: str | Path) -> None:
        """Writes the tokenizer and image preprocessing settings into `path`."""

    @classmethod
    @abstractmethod
    def from_pretrained(cls, path: str | Path) -> BackboneIO:
        """Reads what `save_pretrained` wrote (local files only)."""

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @property
    def eos_id(self) -> int:
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the backbone's tokenizer has no end-of-sequence token")
        return self.tokenizer.eos_token_id

    @property
    def special_ids(self) -> list[int]:
        """Ids that are not text: special tokens (image, padding, ...) and tokens added to the vocabulary."""
        return sorted(set(self.tokenizer.all_special_ids) | set(self.tokenizer.added_tokens_decoder))

    @property
    def pad_id(self) -> int:
        return self.eos_id if self.tokenizer.pad_token_id is None else self.tokenizer.pad_token_id


class ProcessorIO(BackboneIO):
    """A family whose transformers processor runs without torchvision: the processor does the work."""

    image_placeholder: ClassVar[str] = "<image>"

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer

    def encode_prompt(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        out = self.processor(images=[image], text=[self.image_placeholder + prompt], return_tensors="np")
        # PaliGemma's processor also returns labels for the prompt; answers are appended later, as ids.
        return {key: torch.from_numpy(np.asarray(value)) for key, value in out.items() if key != "labels"}

    def save_pretrained(self, path: str | Path) -> None:
        self.processor.save_pretrained(str(path))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ProcessorIO:
        return cls(AutoProcessor.from_pretrained(str(path), local_files_only=True))


class PaliGemmaIO(ProcessorIO):
    model_type = "paligemma"
    answer_separator = ""
    sequence_keys: ClassVar[dict[str, tuple[int, int]]] = {"attention_mask": (1, 0), "token_type_ids": (1, 1)}


class Idefics3IO(ProcessorIO):
    model_type = "idefics3"


class Qwen2VLIO(BackboneIO):
    model_type = "qwen2_vl"
    sequence_keys: ClassVar[dict[str, tuple[int, int]]] = {"attention_mask": (1, 0), "mm_token_type_ids": (0, 0)}
    vision_start, image_pad, vision_end = "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"

    def __init__(self, image_processor: Any, tokenizer: Any) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_pad)

    def encode_prompt(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        pixels = self.image_processor(images=[image], return_tensors="pt")
        count = int(pixels["image_grid_thw"][0].prod()) // self.image_processor.merge_size**2
        text = self.vision_start + self.image_pad * count + self.vision_end + prompt
        inputs = dict(self.tokenizer([text], return_tensors="pt"))
        inputs["mm_token_type_ids"] = (inputs["input_ids"] == self.image_token_id).long()
        return inputs | dict(pixels)

    def save_pretrained(self, path: str | Path) -> None:
        self.image_processor.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Qwen2VLIO:
        return cls(
            AutoImageProcessor.from_pretrained(str(path), local_files_only=True),
            AutoTokenizer.from_pretrained(str(path), local_files_only=True),
        )


IO_BY_MODEL_TYPE: dict[str, type[BackboneIO]] = {io.model_type: io for io in (PaliGemmaIO, Idefics3IO, Qwen2VLIO)}


def io_for(model_type: str) -> type[BackboneIO]:
    if model_type not in IO_BY_MODEL_TYPE:
        raise ValueError(f"unsupported backbone {model_type!r}; supported: {sorted(IO_BY_MODEL_TYPE)}")
    return IO_BY_MODEL_TYPE[model_type]


def load_backbone(path: str | Path, dtype: torch.dtype = torch.float32) -> tuple[Any, BackboneIO]:
    """The model and its input conventions from a local transformers directory (nothing is downloaded); its weights
    are read from safetensors only."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no vision-language model at {path}: config.json is missing")
    refuse_pickles(path, CONVERT_PICKLE)
    # Loading prints per-file progress bars; a policy node's log has no use for them.
    logging.disable_progress_bar()
    io_class = io_for(AutoConfig.from_pretrained(str(path), local_files_only=True).model_type)
    model = AutoModelForImageTextToText.from_pretrained(
        str(path), local_files_only=True, dtype=dtype, use_safetensors=True
    )
    return model.eval(), io_class.from_pretrained(path)


def save_backbone(model: Any, io: BackboneIO, path: str | Path) -> None:
    """Writes the model (safetensors) and its processor files into `path`."""
    Path(path).mkdir(parents=True, exist_ok=True)
    logging.disable_progress_bar()
    model.save_pretrained(str(path))
    io.save_pretrained(path)
