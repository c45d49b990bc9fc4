"""The report card: every stage of the pipeline (:mod:`llmcourse.pipeline`) measured the same way, in one
table, as nanochat's report card does for its stages.

Rows are stages (base, SFT, DPO); the columns (:data:`COLUMNS`) are measured by the course's own pieces:

- ``bits_per_byte``: loss on the plays' validation text per UTF-8 byte (:func:`llmcourse.evaluation.bits_per_byte`),
  comparable across tokenizers;
- ``instructions``: exact match on notebook 08's tasks asked in the **held-out phrasing** (a base model is
  asked the way a base model can be: one worked example before the question);
- ``order_slots``: the ordering bot's summary on **menus of unseen dishes** (the share of order lines right,
  on the dialogue's true history; what the customer reads);
- ``arithmetic_tool``: exact match on 3-digit arithmetic with the calculator (notebook 13);
- ``ece``: expected calibration error of next-token predictions on the assistant's turns of held-out
  conversations (a base model: on the plays), 10 bins, at most 8,000 predictions;
- ``hallucination``: the share of questions about unseen or made-up characters answered with a wrong play
  (:mod:`llmcourse.facts`);
- ``kl``: KL(stage || its reference) per reply on the preference prompts, for a preference-tuned stage.

A stage that cannot be asked (a base model has no chat template) gets ``None`` in that column.
"""

from __future__ import annotations

from llmcourse.checks import ArgumentError, check_int, fail

__all__ = ["COLUMNS", "format_report", "report_card"]

#: The report card's columns: key -> heading.
COLUMNS = {"bits_per_byte": "bits/byte", "instructions": "instructions", "order_slots": "order slots",
           "arithmetic_tool": "arithmetic+tool", "ece": "ECE", "hallucination": "hallucination", "kl": "KL to ref"}


def _instructions(model, tok, chat_model: bool, n: int, seed: int) -> float:
    from llmcourse import chat, instructions

    examples = instructions.instruction_examples(n, split="validation", phrasings="heldout", seed=seed)
    if chat_model:
        answer = lambda e: chat.respond(model, tok, instructions.conversation(e)[:-1], max_new_tokens=32)  # noqa: E731
    else:
        demos = instructions.instruction_examples(40, seed=999, tasks=list(instructions.TASKS))
        by_task = {t: [d for d in demos if d.task == t][:1] for t in instructions.TASKS}
        answer = lambda e: instructions.few_shot_answer(model, tok, e, by_task[e.task])  # noqa: E731
    return instructions.evaluate(answer, examples)["all"]


def _ece(model, tok, chat_model: bool, n: int, seed: int) -> float:
    import torch

    from llmcourse import chat, instructions, ordering
    from llmcourse import evaluation as ev
    from llmcourse.lm import MaskedExamples

    if chat_model:
        held = ([instructions.conversation(e) for e in
                 instructions.instruction_examples(min(100, 10 * n), split="validation", seed=seed)]
                + [d.messages for d in ordering.dialogues(min(60, 6 * n), pool="train", seed=seed)])
        from llmcourse.pipeline import fitting_examples

        examples = fitting_examples(chat.sft_examples(tok, held), model.context_size)[0]
    else:
        from llmcourse.datasets import load_shakespeare

        ids = torch.as_tensor(tok.encode(load_shakespeare("validation")[:min(40_000, 4000 * n)]))
        w = model.context_size
        examples = MaskedExamples([(ids[i:i + w], ids[i + 1:i + w + 1]) for i in range(0, len(ids) - w - 1, w)])
    logits, labels = ev.prediction_logits(model, examples, max_targets=8000)
    conf, pred = ev.confidences(logits)
    return ev.expected_calibration_error(conf, pred == labels)


def report_card(folders, *, n: int = 100, n_chars: int = 50_000, seed: int = 5000) -> dict:
    """Measure each stage folder (a pretrain, sft or prefer stage of :mod:`llmcourse.pipeline`) on every
    column it can be asked; ``n`` questions, dialogues or prompts per column, ``n_chars`` of validation
    text. Returns ``{"stages": [{"stage", "folder", <column>: value or None}], "n", "n_chars", "seed"}``.
    A prefer stage's KL is measured against the sft stage among ``folders`` it was made from (None if that
    stage is not given)."""
    from llmcourse import alignment as al
    from llmcourse import facts, ordering, pipeline, tool_use
    from llmcourse.datasets import load_shakespeare
    from llmcourse.evaluation import text_loss

    if isinstance(folders, (str, bytes)) or not folders:
        raise fail("folders", "a non-empty list of stage folders", folders)
    n = check_int("n", n, minimum=1)
    n_chars = check_int("n_chars", n_chars, minimum=1000)
    seed = check_int("seed", seed, minimum=0)
    loaded = []
    for folder in folders:
        model, tok, card = pipeline.load(folder)
        if model is None:
            raise ArgumentError(f"folders: {folder} is a tokenizer stage; the report card measures models")
        loaded.append((str(folder), model, tok, card))
    by_sha = {card["sha256"]: (model, tok) for _, model, tok, card in loaded}
    rows = []
    for folder, model, tok, card in loaded:
        chat_model = card["stage"] in ("sft", "prefer")
        row = {"stage": card["stage"], "folder": folder, **dict.fromkeys(COLUMNS)}
        row["bits_per_byte"] = text_loss(model, tok, load_shakespeare("validation")[:n_chars])["bits_per_byte"]
        row["instructions"] = _instructions(model, tok, chat_model, n, seed)
        row["ece"] = _ece(model, tok, chat_model, n, seed)
        if chat_model:
            summaries = tool_use.summary_rows(model, tok, ordering.dialogues(n, pool="heldout", seed=seed))
            row["order_slots"] = tool_use.rates(summaries, ("slot_accuracy",))["slot_accuracy"]
            questions = tool_use.arithmetic_questions(n, digits=(3, 3), seed=seed)
            row["arithmetic_tool"] = tool_use.rates(tool_use.arithmetic_rows(model, tok, questions))["correct"]
            asked = [q for kind in ("unseen", "made-up") for q in facts.fact_questions(n, kind, split="test", seed=seed)]
            row["hallucination"] = facts.report(facts.answer_questions(model, tok, asked))["hallucination"]["rate"]
        reference = by_sha.get(card.get("from", {}).get("sha256"))
        if card["stage"] == "prefer" and reference is not None:
            prompts = al.order_prompts(n, pool="words", seed=seed)
            row["kl"] = al.evaluate_policy(model, reference[0], tok, prompts, seed=seed)["kl"]
        rows.append(row)
    return {"stages": rows, "n": n, "n_chars": n_chars, "seed": seed}


def format_report(report: dict) -> str:
    """The report card as a text table (``-`` where a stage cannot be measured)."""
    if not isinstance(report, dict) or "stages" not in report:
        raise fail("report", "a report from report_card", report)
    widths = {k: max(len(h), 6) + 2 for k, h in COLUMNS.items()}
    head = f"{'stage':<9}" + "".join(f"{h:>{widths[k]}}" for k, h in COLUMNS.items())
    lines = [head, "-" * len(head)]
    for row in report["stages"]:
        cells = {k: "-" if row[k] is None else f"{row[k]:.3f}" for k in COLUMNS}
        lines.append(f"{row['stage']:<9}" + "".join(f"{cells[k]:>{widths[k]}}" for k in COLUMNS))
    return "\n".join(lines)
