"""Checkers for notebook 00 (welcome)."""

from llmcourse.exercises import Incorrect, exercise, expect_choice, expect_number, expect_sequence


@exercise(
    "00.1",
    "Memory to hold GPT-3's 175 billion parameters in 16-bit floats, in GB (10^9 bytes).",
    hints=[
        "A 16-bit float takes 2 bytes.",
        "175e9 parameters × 2 bytes, then divide by 1e9 to get GB.",
    ],
)
def _gpt3_memory(answer):
    expect_number(
        answer,
        350.0,
        what="Your memory estimate (GB)",
        mistakes={
            700.0: "that is 4 bytes per parameter (32-bit floats); 16-bit floats take 2 bytes.",
            175.0: "that is 1 byte per parameter; a 16-bit float takes 2 bytes.",
            350e9 / 2**30: "that is GiB (2^30 bytes); the question asks for GB (10^9 bytes).",
            350e9: "that is bytes; divide by 10^9 for GB.",
        },
    )
    return "350 GB: more than four 80 GB GPUs just to hold the weights, before any training state."


@exercise(
    "00.2",
    "Training compute of Chinchilla (70 billion parameters, 1.4 trillion tokens) with C ≈ 6·N·D, in FLOPs.",
    hints=[
        "N is the number of parameters and D the number of training tokens.",
        "6 × 70e9 × 1.4e12.",
    ],
)
def _chinchilla_compute(answer):
    expect_number(
        answer,
        6 * 70e9 * 1.4e12,
        what="Your compute estimate (FLOPs)",
        mistakes={
            2 * 70e9 * 1.4e12: "that is 2·N·D, the forward pass only; the backward pass costs about twice "
            "the forward, so training is about 6·N·D.",
            70e9 * 1.4e12: "that is N·D; each parameter costs about 6 FLOPs per token in training "
            "(2 forward, 4 backward).",
        },
    )
    return "About 5.9e23 FLOPs: on a laptop that does 1e11 FLOP/s that is about 190,000 years."


@exercise(
    "00.3",
    "Order the fields from the broadest to the narrowest: 'AI', 'DL', 'LLM', 'ML'.",
    hints=["Each field is a subset of the one before it.", "Deep learning is one way of doing machine learning."],
)
def _nesting(answer):
    if isinstance(answer, (list, tuple)) and all(isinstance(a, str) for a in answer):
        answer = [a.strip().upper() for a in answer]
    expect_sequence(answer, ["AI", "ML", "DL", "LLM"], what="Your ordering")
    return "AI ⊃ ML ⊃ DL ⊃ LLM: every LLM is a deep network trained by machine learning."


@exercise(
    "00.4",
    "Which stage turns a next-token predictor into a model that follows instructions: "
    "'pretraining', 'instruction tuning', 'alignment' or 'prompting'?",
    hints=["Which stage trains on (instruction, response) pairs?"],
)
def _stage(answer):
    if not isinstance(answer, str):
        raise Incorrect(f"Answer with the name of a stage as a string, got {type(answer).__name__}.")
    expect_choice(
        answer,
        "instruction tuning",
        ["pretraining", "instruction tuning", "alignment", "prompting"],
        explain={
            "pretraining": "Pretraining teaches next-token prediction on raw text: the model continues a "
            "question with more questions as happily as with an answer.",
            "alignment": "Alignment (RLHF, DPO) starts from a model that already follows instructions and "
            "steers it towards the responses people prefer.",
            "prompting": "Prompting changes the input, not the model; a base model's response to an "
            "instruction is unreliable until it has been tuned on instructions.",
        },
    )
    return "Instruction tuning: supervised fine-tuning on (instruction, response) pairs (notebook 08)."
