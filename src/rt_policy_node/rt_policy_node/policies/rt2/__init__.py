"""RT-2-style vision-language-action policy on a Hugging Face vision-language model.

codec.py        actions as 11 vocabulary ids (integers or least-frequent tokens), ids only
prompts.py      "Q: what action should the robot take to {instruction}? A:", the optional plan
constrained.py  the logits processor that admits only a valid action
backbones.py    how PaliGemma, Idefics3/SmolVLM and Qwen2-VL are fed; loading from a local directory
presets.py      backbones built from config with an in-process BPE tokenizer (tests, CPU, benchmarks)
config.py       RT2Config: the checkpoint's config.json
modeling.py     RT2Model: loss on a collated batch, constrained answers, save/load
processing.py   robot and vision-language examples, and their collate
robot_data.py   steps of an `rt-dataset` build as robot examples
vl_data.py      the JSONL + PNG format for vision-language pairs
scene_qa.py     question/answer pairs from simulation state
mixture.py      batches with a fixed robot share (co-fine-tuning)
train.py        a small standalone training loop (rt-train --policy rt2 is the full one)
policy.py       RT2Policy: the `Policy` interface
cli.py          rt2-init: an untrained checkpoint to start from
vl_eval.py      rt2-vl-eval: exact-match accuracy of a checkpoint's answers to vision-language questions
"""
