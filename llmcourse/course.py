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


# ----------------------------------------------------------------------------------------------------
# documents generated from the notebooks, so they never drift from them


def _markdown_cells(path: Path) -> list[str]:
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def key_terms(path: Path) -> list[tuple[str, str, str]]:
    """The rows ``(English, 中文, meaning)`` of a notebook's "Key terms" table."""
    for text in _markdown_cells(Path(path)):
        if "### Key terms" in text:
            rows = [line for line in text.splitlines() if line.startswith("|")][2:]
            out = []
            for row in rows:
                cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
                if len(cells) == 3:
                    out.append((cells[0], cells[1], cells[2]))
            return out
    return []


def _section(path: Path, heading: str) -> str:
    """The text under ``### heading`` in a notebook's first markdown cell, up to the next heading."""
    for text in _markdown_cells(path)[:1]:
        lines, on, out = text.splitlines(), False, []
        for line in lines:
            if line.startswith("#"):
                on = line.strip() == f"### {heading}"
                continue
            if on:
                out.append(line)
        return "\n".join(out).strip()
    return ""


def _existing(notebooks_dir: Path) -> list[tuple[str, str, str, str]]:
    return [row for row in COURSE_MAP if (notebooks_dir / row[1]).exists()]


def glossary_markdown(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """GLOSSARY.md: every key term of every notebook, English and Chinese, sorted, with the notebooks that
    list it (the first notebook's meaning is kept)."""
    terms: dict[str, list] = {}
    for number, file, _, _ in _existing(notebooks_dir):
        for english, chinese, meaning in key_terms(notebooks_dir / file):
            entry = terms.setdefault(english.lower(), [english, chinese, meaning, []])
            entry[3].append(f"[{number}](notebooks/{file})")
    lines = ["# Glossary · 术语表", "",
             "Every key term of the notebooks, English and Chinese, with the notebooks that define it. Generated",
             "from the notebooks' key-term tables by `python -m llmcourse docs`; do not edit by hand.", "",
             "| English | 中文 | meaning | notebooks |", "|---|---|---|---|"]
    for key in sorted(terms):
        english, chinese, meaning, where = terms[key]
        lines.append(f"| {english} | {chinese} | {meaning} | {', '.join(where)} |")
    return "\n".join(lines) + "\n"


PARTS = {"00": "Start here", "01": "Part I · counting and predicting", "04": "Part II · the Transformer, pretraining, scale",
         "07": "Part III · adapting and using models"}


def syllabus_markdown(notebooks_dir: Path = NOTEBOOKS_DIR) -> str:
    """SYLLABUS.md: the notebooks in order, by part, each with its learning goals, prerequisites and run
    time as the notebook states them, and the notebooks still to come."""
    lines = ["# Syllabus", "",
             "The course in order: what each notebook teaches, what it needs from the ones before, and how long it",
             "runs on a 2-core laptop. Generated from the notebooks by `python -m llmcourse docs`; do not edit by",
             "hand. A term can take about one notebook a week, with the exercises as homework; each part also has",
             "two open-ended projects in [PROJECTS.md](PROJECTS.md). Each notebook's study time is in its contents",
             "cell.", ""]
    for number, file, title, builds in COURSE_MAP:
        if number in PARTS:
            lines += [f"## {PARTS[number]}", ""]
        path = notebooks_dir / file
        if not path.exists():
            lines += [f"### {number} · {title} *(coming)*", "", f"What you will build: {builds}.", ""]
            continue
        lines += [f"### {number} · [{title}](notebooks/{file})", ""]
        for heading in ("Learning goals", "Prerequisites", "Estimated run time"):
            text = _section(path, heading)
            if text:
                lines += [f"**{heading}.**", "", text, ""]
    return "\n".join(lines).rstrip() + "\n"


def next_link(number: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> str | None:
    """The "Next" line notebook ``number`` ends with, or None if the next notebook does not exist yet."""
    numbers = [row[0] for row in COURSE_MAP]
    if number not in numbers or numbers.index(number) + 1 == len(numbers):
        return None
    nxt, file, title, _ = COURSE_MAP[numbers.index(number) + 1]
    if not (notebooks_dir / file).exists():
        return None
    return f"**Next:** [{nxt} · {title}]({file})"


#: Reading rates behind a notebook's study time: words of text and lines of code a minute, and minutes an
#: exercise takes. An estimate, stated with its rates so an instructor can redo it with their own.
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE, MINUTES_PER_EXERCISE = 150, 10, 15
TOC_HEADING = "### Contents"


def _anchor(heading: str) -> str:
    """The link to a heading as JupyterLab names it: its rendered text with spaces as ``-``."""
    import re
    from urllib.parse import quote

    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) renders as text
    text = text.replace("`", "").replace("**", "").strip()
    return "#" + quote(text.replace(" ", "-"), safe="-.,:;'!?/·⊃&=+@~")


def _read(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text(encoding="utf-8"))


def study_minutes(path: Path | dict) -> tuple[int, dict[str, int]]:
    """A notebook's study time in minutes (reading its text and code, doing its exercises) and the counts
    behind it, at the rates above; the contents cell itself is not counted. ``path`` may also be the
    notebook already read."""
    import re

    nb = path if isinstance(path, dict) else _read(path)
    words = code = exercises = 0
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and not text.startswith(TOC_HEADING):
            words += len(re.findall(r"\w+", text))
        elif cell["cell_type"] == "code":
            code += sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
            exercises += "check(" in text
    minutes = words / WORDS_PER_MINUTE + code / CODE_LINES_PER_MINUTE + exercises * MINUTES_PER_EXERCISE
    return round(minutes), {"words": words, "code_lines": code, "exercises": exercises}


def _hours(minutes: int) -> str:
    quarters = max(1, round(minutes / 15))
    whole, part = divmod(quarters, 4)
    frac = ["", "¼", "½", "¾"][part]
    if whole == 0:
        return f"{minutes} minutes"
    return f"{whole}{frac} hour{'s' if quarters > 4 else ''}"


def contents_markdown(path: Path | dict) -> str:
    """The contents cell of a notebook: its study time and a link to every ``##`` section. ``path`` may
    also be the notebook already read."""
    nb = path if isinstance(path, dict) else _read(path)
    minutes, n = study_minutes(nb)
    lines = [TOC_HEADING, "",
             f"Study time: about {_hours(minutes)} ({n['words']:,} words of text at {WORDS_PER_MINUTE} a minute, "
             f"{n['code_lines']:,} lines of code at {CODE_LINES_PER_MINUTE} a minute, {n['exercises']} exercises at "
             f"{MINUTES_PER_EXERCISE} minutes each); the run time is above.", ""]
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.startswith("## "):
                title = line[3:].strip()
                lines.append(f"- [{title}]({_anchor(title)})")
    return "\n".join(lines)


def write_contents(path: Path) -> bool:
    """Put the contents cell right after a notebook's first cell (or bring it up to date); True if the
    file changed. Only that markdown cell changes: outputs and execution counts are left as they are."""
    import json

    from llmcourse.files import write_atomic_text

    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    text = contents_markdown(nb)
    source = [line + "\n" for line in text.split("\n")]
    source[-1] = source[-1].rstrip("\n")
    cells = nb["cells"]
    if len(cells) > 1 and cells[1]["cell_type"] == "markdown" and "".join(cells[1]["source"]).startswith(TOC_HEADING):
        cells[1]["source"] = source
    else:
        cells.insert(1, {"cell_type": "markdown", "id": "contents", "metadata": {}, "source": source})
    new = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat writes it
    if new == raw:
        return False
    write_atomic_text(path, new)
    return True


def write_docs(root: Path | None = None) -> list[Path]:
    """Write GLOSSARY.md and SYLLABUS.md at the repository root and bring every notebook's contents cell up
    to date; return the paths written."""
    from llmcourse.files import write_atomic_text

    root = Path(root) if root is not None else NOTEBOOKS_DIR.parent
    out = []
    for name, text in (("GLOSSARY.md", glossary_markdown()), ("SYLLABUS.md", syllabus_markdown())):
        write_atomic_text(root / name, text)
        out.append(root / name)
    for _, file, _, _ in _existing(root / "notebooks"):
        if write_contents(root / "notebooks" / file):
            out.append(root / "notebooks" / file)
    return out
