"""RT-2's text formats: the question that asks for an action, and the optional plan before the action.

    prompt   "Q: what action should the robot take to {instruction}? A:"
    answer   the 11 action ids                                   (plain)
             "Plan: {plan}." + " Action:" + the 11 action ids    (chain of thought; the plan is free text)

Vision-language examples use "Q: {question} A:" with a free-text answer.
"""

from __future__ import annotations

ACTION_QUESTION = "Q: what action should the robot take to {instruction}? A:"
QUESTION = "Q: {question} A:"
PLAN = "Plan: {plan}."
# Tokenised on its own and appended as ids, so training and constrained decoding see the same ids.
ACTION_MARKER = " Action:"


def clean_instruction(instruction: str) -> str:
    """The instruction as it goes into the question: lower case, single spaces, no closing punctuation."""
    cleaned = " ".join(instruction.lower().split()).rstrip(".?!")
    if not cleaned:
        raise ValueError("the instruction is empty")
    return cleaned


def action_prompt(instruction: str) -> str:
    return ACTION_QUESTION.format(instruction=clean_instruction(instruction))


def question_prompt(question: str) -> str:
    question = " ".join(question.split())
    if not question:
        raise ValueError("the question is empty")
    return QUESTION.format(question=question)


def plan_text(plan: str) -> str:
    return PLAN.format(plan=" ".join(plan.split()).rstrip("."))


def parse_plan(text: str) -> str:
    """The plan inside a decoded "Plan: ... ." prefix (whatever the model wrote, trimmed)."""
    text = text.strip()
    if text.startswith("Plan:"):
        text = text[len("Plan:") :]
    return text.strip().rstrip(".").strip()
