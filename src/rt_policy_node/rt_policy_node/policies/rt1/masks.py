"""Who attends to whom in RT-1's token sequence: the original mask and the prefix-LM alternative.

The sequence is `[instruction?] + time_steps x ([image tokens of frame t] + [action tokens of step t])`.
"""

from __future__ import annotations

import torch


def token_layout(time_steps: int, image_tokens: int, action_tokens: int, instruction_token: bool = False):
    """Per position: its time step (-1 for the instruction token) and whether it is an action token."""
    per_step = image_tokens + action_tokens
    step = torch.arange(time_steps).repeat_interleave(per_step)
    is_action = (torch.arange(per_step) >= image_tokens).repeat(time_steps)
    if instruction_token:
        step = torch.cat([torch.tensor([-1]), step])
        is_action = torch.cat([torch.tensor([False]), is_action])
    return step, is_action


def rt1_attention_mask(
    time_steps: int, image_tokens: int, action_tokens: int, instruction_token: bool = False
) -> torch.Tensor:
    """RT-1's mask, `[N, N]` bool, True = query (row) may attend to key (column).

    Image (and instruction) tokens are the open book: plain causal attention over everything before
    them. Action tokens are the answer sheet, filled in all at once: an action position sees the book
    up to its own step and no action position at all, not even itself (its input is a zero vector
    anyway). The logits for action token k are read one position earlier, so token 0 of step t comes
    from the last image token of frame t and token k > 0 from the empty slot k - 1; all of a step's
    tokens are therefore predicted in parallel from the images alone, in one pass.
    """
    n = time_steps * (image_tokens + action_tokens) + int(instruction_token)
    _, is_action = token_layout(time_steps, image_tokens, action_tokens, instruction_token)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return causal & ~(is_action[:, None] & is_action[None, :])


def prefix_lm_attention_mask(
    time_steps: int, image_tokens: int, action_tokens: int, instruction_token: bool = False
) -> torch.Tensor:
    """Prefix-LM mask, `[N, N]` bool: a free-attending context, then causal action tokens.

    Context tokens (images, instruction) attend to each other freely within a frame and to every
    earlier frame, never to a later one: every step is trained in parallel, so a step must not see the
    frames after it (at inference the newest frame is the last anyway). Action tokens hold real
    embeddings of the step's previous action tokens (teacher-forced in training, decoded one by one
    at inference) and attend to the context up to their step and causally to their own step's actions.
    """
    step, is_action = token_layout(time_steps, image_tokens, action_tokens, instruction_token)
    n = step.numel()
    earlier_or_same = step[None, :] <= step[:, None]
    sees_context = ~is_action[None, :] & earlier_or_same
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    sees_own_actions = is_action[:, None] & is_action[None, :] & (step[:, None] == step[None, :]) & causal
    return sees_context | sees_own_actions


def attention_mask(kind: str, time_steps: int, image_tokens: int, action_tokens: int, instruction_token: bool):
    """The `[N, N]` mask of `kind` ("rt1" or "prefix_lm")."""
    masks = {"rt1": rt1_attention_mask, "prefix_lm": prefix_lm_attention_mask}
    if kind not in masks:
        raise ValueError(f"unknown attention kind {kind!r}; choose one of {sorted(masks)}")
    return masks[kind](time_steps, image_tokens, action_tokens, instruction_token)
