"""RT-2-style vision-language-action policy on a Hugging Face vision-language model.

codec.py        actions as 11 vocabulary ids (integers or least-frequent tokens), ids only
prompts.py      "Q: what action should the robot take to {instruction}? A:", the optional plan
constrained.py  the logits processor that admits only a valid action
backbones.py    how PaliGemma, Idefics3/SmolVLM and Qwen2-VL are fed; loading from a local directory
presets.py      backbones built from config with an in-process BPE tokenizer (tests, CPU, benchmarks)
config.py       RT2Config: the checkpoint's config.json
modeling.py     RT2Model: loss on a collated batch, constrained answers, save/load
processing.py   robot examples (steps of an `rt-dataset` build) and vision-language ones, and their collate
policy.py       RT2Policy: the `Policy` interface

The policy only, as in LeRobot's split. Its data lives in `rt_policy_node.data` (vl_jsonl.py: VLExample and the
JSONL + PNG format; scene_qa.py: question/answer pairs from simulation state; cofinetuning.py: batches with a
fixed robot share), its training in `rt-train --policy rt2` (train/recipes.py), and its command-line tools in
`rt_policy_node.cli` (rt2_init.py: rt2-init; rt2_vl_eval.py: rt2-vl-eval).
"""
