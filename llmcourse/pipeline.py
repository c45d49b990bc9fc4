"""The whole course as one pipeline: raw text to a chat model with a tool, in four stages and a chat.

Each stage is a function here and a subcommand of ``python -m llmcourse``, and each is built from the
pieces earlier notebooks wrote (nothing is implemented twice):

1. :func:`tokenizer` — byte-level BPE trained on the plays (notebook 02's ``train_bpe``);
2. :func:`pretrain` — a LLaMA-style Transformer (notebook 04) trained by the course trainer (notebook 05);
3. :func:`sft` — the base grown for chat (chat and tool tokens, a longer context: notebook 08's
   ``grow_for_chat``) and fine-tuned on the tool-use mixture of notebook 13 (arithmetic with the calculator,
   ordering-bot dialogues, instructions, play questions), loss on the assistant's turns only;
4. :func:`prefer` — DPO (notebook 10) on notebook 09's preference pairs, from the SFT model as reference;

then :func:`chat_session` talks to any chat stage with the calculator, and :func:`llmcourse.report`
measures every stage on one report card.

A stage writes a folder: ``model.safetensors`` (the weights), ``tokenizer.json``, and ``card.json`` (what
it was made from, with the sha256 of its input stage's weights, its settings, its training history and
metrics, and the sha256 of its own weights). Training stages save a ``checkpoint.safetensors`` every
``checkpoint_every`` steps while they run: run the same stage again with the same settings and it
**resumes** where it stopped (the trainer restores weights, optimiser, data position and random state, so
the result is the one an uninterrupted run gives); a finished stage is not run again. DPO is short and
resumes at the stage: a finished DPO stage is kept, an unfinished one starts over. :func:`load` reads
any stage folder back.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from llmcourse.checks import ArgumentError, check_int, check_number, fail

__all__ = ["STAGES", "chat_session", "fitting_examples", "load", "prefer", "pretrain", "sft", "tokenizer"]

#: The stages, in order, with the stage each starts from.
STAGES = {"tokenizer": None, "pretrain": "tokenizer", "sft": "pretrain", "prefer": "sft"}
CARD, WEIGHTS, TOKENIZER, CHECKPOINT = "card.json", "model.safetensors", "tokenizer.json", "checkpoint.safetensors"


def _folder(name: str, path) -> Path:
    if not isinstance(path, (str, Path)) or not str(path):
        raise fail(name, "a folder path", path)
    return Path(path)


def _read_card(name: str, folder: Path, stage: str | tuple[str, ...] | None = None) -> dict:
    """The card of a finished stage in ``folder`` (checked to be of ``stage``), or a clear error."""
    path = folder / CARD
    if not path.is_file():
        raise ArgumentError(f"{name}: {folder} holds no finished stage (no {CARD}); run that stage first")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArgumentError(f"{name}: {path} is not a readable card ({e})") from None
    wanted = (stage,) if isinstance(stage, str) else stage
    if wanted and card.get("stage") not in wanted:
        raise ArgumentError(f"{name}: {folder} holds a {card.get('stage')!r} stage; expected {' or '.join(wanted)}")
    return card


def _write_card(folder: Path, card: dict) -> dict:
    from llmcourse.files import write_atomic_text

    write_atomic_text(folder / CARD, json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    return card


def _finished(folder: Path, stage: str, settings: dict) -> dict | None:
    """The card of ``stage`` already finished in ``folder`` with these settings (None if there is none);
    a finished stage with other settings is refused rather than overwritten."""
    path = folder / CARD
    if not path.is_file():
        return None
    card = _read_card("out", folder, stage)
    if card.get("settings") != settings:
        raise ArgumentError(f"out: {folder} already holds a finished {stage} stage with other settings "
                            f"({card.get('settings')}); choose another folder or delete it")
    return card


def _save_weights(folder: Path, model) -> str:
    from safetensors.torch import save

    from llmcourse.files import sha256_file, write_atomic

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(folder / WEIGHTS, save(state))
    return sha256_file(folder / WEIGHTS)


def _environment() -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "machine": platform.machine()}


def load(folder):
    """A stage folder read back: ``(model, tokenizer, card)``; the model in eval mode (``None`` for the
    tokenizer stage). The weights are checked against the sha256 on the card."""
    from safetensors.torch import load_file

    from llmcourse.files import sha256_file
    from llmcourse.tokenization import BPETokenizer
    from llmcourse.transformer import TransformerConfig, TransformerLM

    folder = _folder("folder", folder)
    card = _read_card("folder", folder)
    tok = BPETokenizer.load(folder / TOKENIZER)
    if card["stage"] == "tokenizer":
        return None, tok, card
    weights = folder / WEIGHTS
    if not weights.is_file() or sha256_file(weights) != card["sha256"]:
        raise ArgumentError(f"folder: the weights in {folder} are missing or do not match the sha256 on its card; "
                            f"run the {card['stage']} stage again")
    model = TransformerLM(TransformerConfig(**card["config"]))
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), tok, card


# ----------------------------------------------------------------------------------------------------
# the stages


def tokenizer(out, *, vocab_size: int = 1024, text_chars: int | None = None) -> dict:
    """Stage 1: byte-level BPE with ``vocab_size`` ids (``<|endoftext|>`` included) trained on the plays'
    train split (its first ``text_chars`` characters, if given). Writes ``tokenizer.json`` and the card."""
    from llmcourse.datasets import load_shakespeare
    from llmcourse.files import sha256_file
    from llmcourse.tokenization import train_bpe

    out = _folder("out", out)
    vocab_size = check_int("vocab_size", vocab_size, minimum=257)
    if text_chars is not None:
        text_chars = check_int("text_chars", text_chars, minimum=1000)
    settings = {"vocab_size": vocab_size, "text_chars": text_chars}
    if (done := _finished(out, "tokenizer", settings)) is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    text = load_shakespeare("train")[:text_chars]
    start = time.perf_counter()
    tok = train_bpe(text, vocab_size, special_tokens=["<|endoftext|>"])
    tok.save(out / TOKENIZER)
    return _write_card(out, {"stage": "tokenizer", "settings": settings, "seconds": round(time.perf_counter() - start, 2),
                             "made_by": "llmcourse.tokenization.train_bpe on load_shakespeare('train')",
                             "vocab_size": tok.vocab_size, "tokenizer_sha256": sha256_file(out / TOKENIZER)})


_ENCODED: dict[tuple[str, str], torch.Tensor] = {}


def _encoded(tok, sha256: str, split: str) -> torch.Tensor:
    """The plays' ``split`` in the tokenizer with file hash ``sha256``, encoded once per process (encoding
    4 MB of text takes seconds; a resumed or repeated stage need not pay it again)."""
    from llmcourse.datasets import load_shakespeare

    if (sha256, split) not in _ENCODED:
        _ENCODED[(sha256, split)] = torch.as_tensor(tok.encode(load_shakespeare(split)))
    return _ENCODED[(sha256, split)]


def _train(out: Path, model, train, val, config, *, checkpoint_every: int | None, until_step: int | None,
           show_progress: bool):
    """Run the trainer with a checkpoint in ``out``, resuming from it if it is there. Returns
    ``(trainer, finished, seconds)``."""
    from llmcourse.training import Trainer

    trainer = Trainer(model, train, val, config, show_progress=show_progress)
    ckpt = out / CHECKPOINT
    if ckpt.is_file():
        trainer.load_checkpoint(ckpt)
        print(f"resumed from {ckpt} at step {trainer.step}", flush=True)
    start = time.perf_counter()
    trainer.fit(until_step, checkpoint=ckpt, checkpoint_every=checkpoint_every or max(1, config.steps // 10))
    return trainer, trainer.done, time.perf_counter() - start


def _history(trainer) -> dict:
    h = trainer.history.as_dict()
    return {k: h[k] for k in ("steps", "train_loss", "val_loss")}


def pretrain(out, tokenizer_dir, *, steps: int = 2400, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
             block_size: int = 128, batch_size: int = 32, lr: float = 5e-3, seed: int = 0,
             checkpoint_every: int | None = None, until_step: int | None = None, show_progress: bool = True) -> dict:
    """Stage 2: a LLaMA-style Transformer (RMSNorm, RoPE, SwiGLU) pretrained on the plays' train split in
    the tokenizer of ``tokenizer_dir`` (cosine schedule, 3% warm-up, weight decay 0.1, clipping at 1).
    ``until_step`` stops part-way, as an interruption would (the card is written only when the run is
    done); running it again resumes. Returns the card (``{"stage": "pretrain", "status": "stopped", ...}``
    if stopped early)."""
    from llmcourse.datasets import load_shakespeare
    from llmcourse.notebook import seed_everything
    from llmcourse.tokenization import BPETokenizer
    from llmcourse.training import TrainConfig
    from llmcourse.transformer import TransformerConfig, TransformerLM

    out, tokenizer_dir = _folder("out", out), _folder("tokenizer_dir", tokenizer_dir)
    source = _read_card("tokenizer_dir", tokenizer_dir, "tokenizer")
    settings = {"steps": check_int("steps", steps, minimum=1), "n_layer": check_int("n_layer", n_layer, minimum=1),
                "n_head": check_int("n_head", n_head, minimum=1), "n_embd": check_int("n_embd", n_embd, minimum=8),
                "block_size": check_int("block_size", block_size, minimum=8),
                "batch_size": check_int("batch_size", batch_size, minimum=1),
                "lr": check_number("lr", lr, minimum=0.0, strict=True), "seed": check_int("seed", seed, minimum=0),
                "tokenizer_sha256": source["tokenizer_sha256"]}
    if n_embd % n_head:
        raise ArgumentError(f"n_embd must be a multiple of n_head ({n_head}); got {n_embd}")
    if (done := _finished(out, "pretrain", settings)) is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    tok = BPETokenizer.load(tokenizer_dir / TOKENIZER)
    tok.save(out / TOKENIZER)
    train_ids, val_ids = (_encoded(tok, source["tokenizer_sha256"], split) for split in ("train", "validation"))
    val_text = load_shakespeare("validation")
    seed_everything(seed)
    model = TransformerLM(TransformerConfig.llama(tok.vocab_size, block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    config = TrainConfig(steps=steps, batch_size=batch_size, seq_len=block_size, lr=lr, warmup=0.03, weight_decay=0.1,
                         clip=1.0, schedule="cosine", seed=seed, eval_every=max(1, steps // 24))
    trainer, finished, seconds = _train(out, model, train_ids, val_ids, config, checkpoint_every=checkpoint_every,
                                        until_step=until_step, show_progress=show_progress)
    if not finished:
        return {"stage": "pretrain", "status": "stopped", "step": trainer.step, "settings": settings}
    from llmcourse.evaluation import text_loss

    metrics = text_loss(model, tok, val_text, val_ids)
    card = {"stage": "pretrain", "settings": settings, "from": {"tokenizer_sha256": source["tokenizer_sha256"]},
            "config": model.config.as_dict(), "training": config.as_dict(), "parameters": model.num_parameters(),
            "seconds": round(seconds, 1), "built_with": _environment(), "history": _history(trainer),
            "metrics": {"val_loss_nats": round(metrics["loss_nats"], 6),
                        "val_bits_per_byte": round(metrics["bits_per_byte"], 6)}}
    card["sha256"] = _save_weights(out, model)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return _write_card(out, card)


def sft(out, base_dir, *, steps: int = 2000, batch_size: int = 32, lr: float = 3e-3, block_size: int = 256,
        n_arithmetic: int = 6000, n_orders: int = 12000, n_instructions: int = 12000, n_facts: int = 6000,
        seed: int = 0, checkpoint_every: int | None = None, until_step: int | None = None,
        show_progress: bool = True) -> dict:
    """Stage 3: supervised fine-tuning of the pretrained model in ``base_dir`` into a chat model with the
    calculator: the tokenizer gets the chat and tool tokens (every old id kept), the model their rows and a
    ``block_size`` context, and the course trainer fine-tunes it on :func:`llmcourse.tool_use.tool_mixture`
    with the loss on the assistant's turns (never on the calculator's results). Resumable like
    :func:`pretrain`."""
    from llmcourse import chat, tool_use
    from llmcourse.notebook import seed_everything
    from llmcourse.training import TrainConfig

    out, base_dir = _folder("out", out), _folder("base_dir", base_dir)
    base, base_tok, base_card = load(base_dir)
    if base_card["stage"] != "pretrain":
        raise ArgumentError(f"base_dir: {base_dir} holds a {base_card['stage']!r} stage; expected pretrain")
    settings = {"steps": check_int("steps", steps, minimum=1), "batch_size": check_int("batch_size", batch_size, minimum=1),
                "lr": check_number("lr", lr, minimum=0.0, strict=True),
                "block_size": check_int("block_size", block_size, minimum=base.config.block_size),
                "n_arithmetic": check_int("n_arithmetic", n_arithmetic, minimum=0),
                "n_orders": check_int("n_orders", n_orders, minimum=0),
                "n_instructions": check_int("n_instructions", n_instructions, minimum=0),
                "n_facts": check_int("n_facts", n_facts, minimum=0), "seed": check_int("seed", seed, minimum=0),
                "base_sha256": base_card["sha256"]}
    if (done := _finished(out, "sft", settings)) is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    tok = tool_use.add_tool_tokens(chat.add_chat_tokens(base_tok))
    tok.save(out / TOKENIZER)
    model = chat.grow_for_chat(base, tok.vocab_size, block_size)
    mixture = tool_use.tool_mixture(n_arithmetic, n_orders, n_instructions, n_facts, seed=seed)
    train, dropped = fitting_examples(chat.sft_examples(tok, mixture), block_size)
    val, _ = fitting_examples(chat.sft_examples(tok, tool_use.tool_mixture(100, 100, 100, 100, seed=seed + 1)),
                              block_size)
    seed_everything(seed)
    config = TrainConfig(steps=steps, batch_size=batch_size, seq_len=block_size, lr=lr, warmup=0.05, clip=1.0,
                         schedule="cosine", seed=seed, eval_every=max(1, steps // 20), eval_tokens=8192)
    trainer, finished, seconds = _train(out, model, train, val, config, checkpoint_every=checkpoint_every,
                                        until_step=until_step, show_progress=show_progress)
    if not finished:
        return {"stage": "sft", "status": "stopped", "step": trainer.step, "settings": settings}
    card = {"stage": "sft", "settings": settings, "from": {"stage": "pretrain", "sha256": base_card["sha256"]},
            "config": model.config.as_dict(), "training": config.as_dict(), "parameters": model.num_parameters(),
            "data": {"made_by": "llmcourse.tool_use.tool_mixture", "train_examples": len(train),
                     "train_targets": train.n_targets, "longer_than_the_context": dropped},
            "seconds": round(seconds, 1), "built_with": _environment(), "history": _history(trainer)}
    card["sha256"] = _save_weights(out, model)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return _write_card(out, card)


def fitting_examples(examples, block_size: int):
    """The examples that fit a ``block_size`` context, and how many did not (a tokenizer trained on little
    text writes longer conversations; they are left out rather than cut)."""
    from llmcourse.lm import MaskedExamples

    keep = [(x, y) for x, y in zip(examples.inputs, examples.targets) if len(x) <= block_size]
    if not keep:
        raise ArgumentError(f"block_size: no conversation fits {block_size} tokens; raise it")
    return MaskedExamples(keep, pad_id=examples.pad_id), len(examples) - len(keep)


def prefer(out, sft_dir, *, beta: float = 0.1, epochs: int = 1, batch_size: int = 32, lr: float = 3e-5,
           n_pairs: int | None = None, seed: int = 0) -> dict:
    """Stage 4: DPO from the SFT model in ``sft_dir`` (also the reference) on notebook 09's preference pairs
    (the first ``n_pairs`` of them, if given): :func:`llmcourse.alignment.train_dpo`."""
    from llmcourse import alignment as al
    from llmcourse.notebook import seed_everything

    out, sft_dir = _folder("out", out), _folder("sft_dir", sft_dir)
    reference, tok, sft_card = load(sft_dir)
    if sft_card["stage"] != "sft":
        raise ArgumentError(f"sft_dir: {sft_dir} holds a {sft_card['stage']!r} stage; expected sft")
    settings = {"beta": check_number("beta", beta, minimum=0.0, strict=True), "epochs": check_int("epochs", epochs, minimum=1),
                "batch_size": check_int("batch_size", batch_size, minimum=1),
                "lr": check_number("lr", lr, minimum=0.0, strict=True),
                "n_pairs": None if n_pairs is None else check_int("n_pairs", n_pairs, minimum=1),
                "seed": check_int("seed", seed, minimum=0), "sft_sha256": sft_card["sha256"]}
    if (done := _finished(out, "prefer", settings)) is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    tok.save(out / TOKENIZER)
    pairs = al.load_preferences()[0][:n_pairs]
    seed_everything(seed)
    start = time.perf_counter()
    policy, history = al.train_dpo(reference, tok, pairs, beta=beta, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    seconds = time.perf_counter() - start
    card = {"stage": "prefer", "settings": settings, "from": {"stage": "sft", "sha256": sft_card["sha256"]},
            "config": policy.config.as_dict(), "parameters": policy.num_parameters(),
            "data": {"made_by": "llmcourse.alignment.load_preferences (notebook 09's pairs)", "pairs": len(pairs)},
            "seconds": round(seconds, 1), "built_with": _environment(),
            "history": {"loss": [round(r["loss"], 6) for r in history],
                        "accuracy": [round(r["accuracy"], 4) for r in history]}}
    card["sha256"] = _save_weights(out, policy)
    return _write_card(out, card)


# ----------------------------------------------------------------------------------------------------
# talking to a chat stage


def _chat_model(model):
    """A chat model by stage folder (an sft or prefer stage) or by zoo name: ``(model, tokenizer, description)``."""
    from llmcourse import chat, zoo

    if isinstance(model, (str, Path)) and (Path(model) / CARD).is_file():
        loaded, tok, card = load(model)
        if card["stage"] not in ("sft", "prefer"):
            raise ArgumentError(f"model: {model} holds a {card['stage']!r} stage; chat needs an sft or prefer stage")
        return loaded, tok, f"the {card['stage']} model in {model}"
    if isinstance(model, str) and model in zoo.names():
        loaded, info = zoo.load(model)
        tok = zoo.tokenizer(info)
        if chat.IM_END not in tok.special_tokens:
            raise ArgumentError(f"model: the zoo's {model} is not a chat model; try one of "
                                f"{[n for n in zoo.names() if 'chat' in n or 'capstone' in n]}")
        return loaded, tok, f"the zoo's {model}"
    raise fail("model", f"a stage folder (with {CARD}) or the name of a chat model in the zoo", model)


def chat_session(model, *, input_lines=None, write=print, system: str | None = None, temperature: float = 0.0,
                 tool: bool = True, max_new_tokens: int = 64, seed: int = 0) -> list[dict[str, str]]:
    """A terminal chat with ``model`` (an sft or prefer stage folder, or a zoo chat model's name): each line read is the
    user's turn; the reply is printed with the calculator's calls. Commands: ``/system TEXT`` (a new
    system prompt; the conversation starts over), ``/temperature T``, ``/tool on|off``, ``/reset``,
    ``/quit``. Earlier turns are dropped when the conversation outgrows the context. ``input_lines``: any
    iterable of lines (standard input by default). Returns the conversation at the end."""
    import sys

    from llmcourse import chat, tool_use, tools

    model, tok, where = _chat_model(model)
    temperature = check_number("temperature", temperature, minimum=0.0)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    lines = sys.stdin if input_lines is None else input_lines
    history: list[dict[str, str]] = []
    has_tool = all(t in tok.special_tokens for t in tools.TOOL_TOKENS)
    tool = bool(tool) and has_tool
    write(f"chatting with {where} (calculator {'on' if tool else 'off'}); "
          f"/quit to leave, /system TEXT, /temperature T, /tool on|off, /reset")
    for raw in lines:
        line = raw.rstrip("\n").strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/reset" or line.startswith("/system"):
            if line.startswith("/system"):
                system = line[len("/system"):].strip() or None
            history = []
            write(f"(new conversation{'; system: ' + system if system else ''})")
            continue
        if line.startswith("/temperature"):
            try:
                temperature = check_number("temperature", float(line.split()[1]), minimum=0.0)
            except (IndexError, ValueError, ArgumentError):
                write("(usage: /temperature T, with T >= 0)")
                continue
            write(f"(temperature {temperature:g})")
            continue
        if line.startswith("/tool"):
            setting = line[len("/tool"):].strip()
            if setting not in ("on", "off"):
                write("(usage: /tool on or /tool off)")
                continue
            if setting == "on" and not has_tool:
                write("(this model was never taught the calculator)")
                continue
            tool = setting == "on"
            write(f"(calculator {setting})")
            continue
        if any(t in line for t in chat.CHAT_TOKENS + tools.TOOL_TOKENS):
            write("(a message may not contain the model's special tokens)")
            continue
        history.append({"role": "user", "content": line})
        head = [{"role": "system", "content": system}] if system else []
        room = model.context_size - max_new_tokens
        while len(history) > 1 and len(chat.render(tok, head + history, add_generation_prompt=True)[0]) > room:
            history = history[2:]                         # the oldest exchange goes first
        if len(chat.render(tok, head + history, add_generation_prompt=True)[0]) > room:
            write(f"(that message is too long for the model's {model.context_size}-token context)")
            history = []
            continue
        reply, calls = tool_use.answer(model, tok, head + history, tool=tool, max_new_tokens=max_new_tokens,
                                       temperature=temperature, generator=generator)
        shown = tools.visible(reply).strip() or "..."
        for expression, result in calls:
            write(f"  [calculator: {expression} = {result}]")
        write(f"assistant: {shown}")
        for special in chat.CHAT_TOKENS + ("<|endoftext|>",):   # markup the model wrote is not the template's
            reply = reply.replace(special, " ")
        history.append({"role": "assistant", "content": reply.strip() or "..."})
    return ([{"role": "system", "content": system}] if system else []) + history
