"""The course map: every notebook, in order, and whether it has been written yet."""

from __future__ import annotations

from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# (number, file, title, what the learner builds)
COURSE_MAP: list[tuple[str, str, str, str]] = [
    ("00", "00_welcome.ipynb", "Welcome", "the map of the field, what 'large' means, the environment check"),
    ("01", "01_ngrams.ipynb", "n-gram language models", "counting, smoothing (Kneser–Ney), perplexity, sampling"),
    ("02", "02_tokenization.ipynb", "Tokenization", "byte-level BPE from scratch, checked against HF tokenizers"),
    ("03", "03_neural_lms.ipynb", "Neural language models", "MLP, RNN, GRU and LSTM language models; BPTT"),
    ("04", "04_transformer.ipynb", "Attention and the Transformer", "attention, positions, GPT and LLaMA blocks, MoE"),
    ("05", "05_pretraining.ipynb", "Pretraining", "data pipeline, a fast trainer, decoding, the KV cache"),
    ("06", "06_scaling.ipynb", "Scaling and distributed training", "scaling laws, Chinchilla, DDP and ZeRO"),
    ("07", "07_finetuning.ipynb", "Fine-tuning and PEFT", "a classification head, LoRA, adapters, prefix and prompt tuning"),
    ("08", "08_instruction_tuning.ipynb", "Instruction tuning and chat", "SFT with loss masks, chat templates"),
    ("09", "09_rlhf.ipynb", "RLHF", "a reward model and PPO with a KL penalty"),
    ("10", "10_dpo.ipynb", "DPO", "direct preference optimisation, compared with PPO"),
    ("11", "11_in_context_learning.ipynb", "Prompting and in-context learning", "few-shot prompts, induction heads"),
    ("12", "12_chain_of_thought.ipynb", "Chain of thought", "scratchpads, self-consistency"),
    ("13", "13_tools_evaluation.ipynb", "Tools, evaluation and limits", "a calculator tool, metrics, hallucination"),
    ("14", "14_capstone.ipynb", "Capstone", "raw text to a chat model with a tool, end to end"),
]


def course_map_markdown(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """A Markdown table of the course, linking the notebooks that exist and marking the rest "coming"."""
    rows = ["| # | notebook | what you build | status |", "|---|---|---|---|"]
    for number, file, title, builds in COURSE_MAP:
        if (notebooks_dir / file).exists():
            rows.append(f"| {number} | [{title}]({file}) | {builds} | ready |")
        else:
            rows.append(f"| {number} | {title} | {builds} | coming |")
    return "\n".join(rows)
