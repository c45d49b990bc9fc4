"""Chat templates: conversations with roles, rendered to token ids with the loss mask that supervised
fine-tuning (SFT) trains on.

A conversation is a list of messages, each ``{"role": ..., "content": ...}`` as Hugging Face and the
OpenAI API write them, with the roles of :data:`ROLES`: an optional ``system`` message first (the
instructions the assistant follows: a persona, a menu, rules), then ``user`` and ``assistant`` taking
turns, starting with the user. The course renders it in the **ChatML** format (OpenAI's Chat Markup
Language, which Qwen and many open models use)::

    <|im_start|>system
    You take orders for a pizza shop.<|im_end|>
    <|im_start|>user
    One margherita, please.<|im_end|>
    <|im_start|>assistant
    One margherita. Anything else?<|im_end|>

``<|im_start|>`` and ``<|im_end|>`` are special tokens: :func:`add_chat_tokens` gives a tokenizer two new
ids after all of its own, so every id a pretrained model knows keeps its meaning, and
:func:`extend_vocab` gives the model the two new embedding rows. :func:`render` returns the ids and
the **loss mask**: 1 on the tokens the assistant writes (its content and the ``<|im_end|>`` that ends
its turn, so the model learns to stop), 0 on everything else (the system message, the user's turns, the
role headers), so fine-tuning teaches the model to answer, not to predict its users.
:func:`sft_example` turns ids and mask into the (input, target) pair of next-token prediction with the
masked targets set to the ignore index -100 (PyTorch's ``cross_entropy`` default), and
:func:`sft_examples` renders many conversations into the :class:`~llmcourse.lm.MaskedExamples` that the
course trainer (:class:`~llmcourse.training.Trainer`) fine-tunes on.

:data:`HF_CHAT_TEMPLATE` is the same format as a Jinja template in the convention of Hugging Face's
``tokenizer.chat_template`` (the tests render it with jinja2 and compare the text).

:func:`respond` is the chat loop's one turn: render the conversation with the assistant's header, generate
until the model writes ``<|im_end|>`` (or ``max_new_tokens`` run out) and return the reply's text.

Bad conversations are refused with the message named: an unknown role, a system message that is not
first, turns that do not alternate, an empty assistant turn, and content that contains a special-token
string (rejected, not escaped: a user who types ``<|im_end|>`` must not be able to end the turn and
write the assistant's part, which is how prompt-injection through chat markup works).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from llmcourse.checks import ArgumentError, check_bool, check_choice, check_int, fail
from llmcourse.lm import IGNORE_INDEX
from llmcourse.tools import TOOL_TOKENS, result_spans

__all__ = [
    "CHAT_TOKENS",
    "HF_CHAT_TEMPLATE",
    "IGNORE_INDEX",
    "IM_END",
    "IM_START",
    "ROLES",
    "add_chat_tokens",
    "add_special_tokens",
    "check_messages",
    "extend_vocab",
    "grow_for_chat",
    "render",
    "render_text",
    "respond",
    "sft_example",
    "sft_examples",
    "special_ids",
]

ROLES: tuple[str, ...] = ("system", "user", "assistant")
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHAT_TOKENS: tuple[str, ...] = (IM_START, IM_END)
#: :func:`render_text` as a Jinja template, in the convention of Hugging Face's ``chat_template``.
HF_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_RESERVED = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
# The calculator's markers (llmcourse.tools): only the assistant writes a call, and only the program a result.
_TOOL_MARKERS = TOOL_TOKENS


def check_messages(messages: Any, *, add_generation_prompt: bool = False) -> list[dict[str, str]]:
    """``messages`` checked against the template's rules; returns them as a list of plain dicts.

    The rules: a non-empty list of ``{"role", "content"}`` dicts; roles from :data:`ROLES`; a system
    message only first; after it the user and the assistant take turns, the user first; no content holds
    a special-token string; an assistant message is not empty. With ``add_generation_prompt`` (the
    conversation is a prompt for the assistant's next turn) the last message must be the user's.
    """
    add_generation_prompt = check_bool("add_generation_prompt", add_generation_prompt)
    if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence) or not messages:
        raise fail("messages", 'a non-empty list of {"role": ..., "content": ...} dicts', messages)
    checked = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise fail(where, 'a dict with exactly the keys "role" and "content"', m)
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise ArgumentError(f"{where}: role must be one of {list(ROLES)}; got {role!r}")
        if not isinstance(content, str):
            raise fail(f"{where}['content']", "a str", content)
        for special in _RESERVED + (_TOOL_MARKERS if role != "assistant" else ()):
            if special in content:
                raise ArgumentError(f"{where}: its content contains the special token {special!r}, which would "
                                    f"change the conversation's structure; special tokens are not allowed in "
                                    f"message text")
        if role == "assistant" and not content.strip():
            raise ArgumentError(f"{where}: an assistant message must not be empty (there is nothing to learn "
                                f"from, and the model would learn to end its turn at once)")
        checked.append({"role": role, "content": content})
    start = 1 if checked[0]["role"] == "system" else 0
    for i, m in enumerate(checked):
        if i < start:
            continue
        if m["role"] == "system":
            raise ArgumentError(f"messages[{i}]: a system message may only come first")
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise ArgumentError(f"messages[{i}]: the user and the assistant must take turns, the user first; "
                                f"expected a {expected!r} message here, got {m['role']!r}")
    if start == len(checked):
        raise ArgumentError("messages: a conversation needs at least one user message after the system message")
    if add_generation_prompt and checked[-1]["role"] != "user":
        raise ArgumentError(f"messages: with add_generation_prompt the last message must be the user's (the "
                            f"assistant answers it); got {checked[-1]['role']!r}")
    return checked


def _content_pieces(content: str, trained: int) -> list[tuple[str, int]]:
    """An assistant's content with every tool result block (``<|result|>...<|/result|>``, inserted by the
    program, see :mod:`llmcourse.tools`) as its own untrained piece: the model learns to call, not to
    write results."""
    pieces, at = [], 0
    for start, end in (result_spans(content) if trained else []):
        pieces += [(content[at:start], trained), (content[start:end], 0)]
        at = end
    return pieces + [(content[at:], trained)]


def _pieces(messages: list[dict[str, str]], add_generation_prompt: bool) -> list[tuple[str, int]]:
    """The rendered text as (piece, trained) pairs: trained = 1 for what the assistant writes."""
    pieces = []
    for m in messages:
        trained = int(m["role"] == "assistant")
        pieces += [(f"{IM_START}{m['role']}\n", 0), *_content_pieces(m["content"], trained), (IM_END, trained),
                   ("\n", 0)]
    if add_generation_prompt:
        pieces.append((f"{IM_START}assistant\n", 0))
    return [(p, t) for p, t in pieces if p]


def render_text(messages, *, add_generation_prompt: bool = False) -> str:
    """The conversation as ChatML text (what :data:`HF_CHAT_TEMPLATE` renders). With
    ``add_generation_prompt`` it ends with the header of the assistant's turn, for the model to continue."""
    messages = check_messages(messages, add_generation_prompt=add_generation_prompt)
    return "".join(p for p, _ in _pieces(messages, add_generation_prompt))


def special_ids(tokenizer, tokens, what: str, how: str) -> dict[str, int]:
    """``{token: id}`` for ``tokens`` in ``tokenizer``, or an error naming ``what`` is missing and ``how`` to
    add it."""
    specials = getattr(tokenizer, "special_tokens", None)
    if not isinstance(specials, dict) or any(t not in specials for t in tokens):
        raise fail("tokenizer", f"a course tokenizer with the {what} {list(tokens)} (add them with {how})", tokenizer)
    return {t: specials[t] for t in tokens}


def _chat_ids(tokenizer) -> dict[str, int]:
    return special_ids(tokenizer, CHAT_TOKENS, "chat tokens", "add_chat_tokens(tokenizer)")


def render(tokenizer, messages, *, add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """The conversation as token ids and the loss mask: ``(ids, mask)``, two lists of one length.

    ``mask[i] = 1`` where token ``i`` is written by the assistant (its content and its ``<|im_end|>``),
    else 0; a calculator's result block in the assistant's content (``<|result|>...<|/result|>``, see
    :mod:`llmcourse.tools`) is written by the program, so it gets 0 too. The ids are those of ``tokenizer.encode(render_text(messages))``: each piece is encoded on
    its own to know where the assistant's part starts and ends, and the tests check that the pieces
    join to the same ids (the special tokens and the newline after each role split the text where the
    byte-level pre-tokenizer splits it anyway).
    """
    _chat_ids(tokenizer)
    messages = check_messages(messages, add_generation_prompt=add_generation_prompt)
    markers = [t for t in _TOOL_MARKERS if t not in tokenizer.special_tokens and any(t in m["content"] for m in messages)]
    if markers:
        raise fail("tokenizer", f"a tokenizer with the tool tokens {list(_TOOL_MARKERS)}, which the conversation "
                                f"uses (add them with tool_use.add_tool_tokens(tokenizer))", tokenizer)
    ids, mask = [], []
    for piece, trained in _pieces(messages, add_generation_prompt):
        piece_ids = [int(i) for i in tokenizer.encode(piece)]
        ids += piece_ids
        mask += [trained] * len(piece_ids)
    return ids, mask


def sft_example(ids, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token prediction from a rendered conversation: ``(inputs, targets)``, both ``(T - 1,)``.

    ``inputs = ids[:-1]``; ``targets[t] = ids[t + 1]`` where ``mask[t + 1] = 1`` (the model is trained to
    write that token), else :data:`IGNORE_INDEX`, which the cross-entropy skips.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    mask = torch.as_tensor(mask)
    if ids.dim() != 1 or len(ids) < 2:
        raise fail("ids", "a list of at least 2 token ids", ids)
    if mask.shape != ids.shape:
        raise ArgumentError(f"mask must have one entry per id ({len(ids)}); got shape {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise fail("mask", "a list of 0s and 1s", mask)
    targets = torch.where(mask[1:].bool(), ids[1:], torch.full_like(ids[1:], IGNORE_INDEX))
    return ids[:-1].clone(), targets


def sft_examples(tokenizer, conversations, *, pad_id: int = 0, train_on: str = "assistant"):
    """Conversations rendered for supervised fine-tuning: a :class:`~llmcourse.lm.MaskedExamples` of one
    :func:`sft_example` per conversation, for :class:`~llmcourse.training.Trainer`.

    ``train_on="assistant"`` (the default, and the usual SFT recipe) keeps the loss on what the assistant
    writes; ``train_on="all"`` trains on every token of the rendered conversation (system message, user
    turns and headers too), the comparison that shows what the loss mask changes.
    """
    from llmcourse.lm import MaskedExamples

    train_on = check_choice("train_on", train_on, ("assistant", "all"))
    if isinstance(conversations, (str, bytes, dict)) or not isinstance(conversations, Sequence) or not conversations:
        raise fail("conversations", "a non-empty list of conversations (lists of messages)", conversations)
    examples = []
    for i, messages in enumerate(conversations):
        try:
            ids, mask = render(tokenizer, messages)
            examples.append(sft_example(ids, mask if train_on == "assistant" else [1] * len(ids)))
        except ArgumentError as e:
            raise ArgumentError(f"conversations[{i}]: {e}") from None
    return MaskedExamples(examples, pad_id=pad_id)


def respond(model, tokenizer, messages, *, max_new_tokens: int = 64, temperature: float = 0.0,
            top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None) -> str:
    """The assistant's next turn: ``messages`` (ending with the user's) rendered with the generation
    prompt, continued by ``model`` until it writes ``<|im_end|>``, decoded without it. ``temperature=0``
    is greedy; the sampling arguments are :func:`llmcourse.generation.generate`'s. A conversation that
    leaves no room in the model's context for an answer is refused."""
    from llmcourse.generation import generate

    end = _chat_ids(tokenizer)[IM_END]
    ids, _ = render(tokenizer, messages, add_generation_prompt=True)
    if getattr(model, "vocab_size", 0) <= end:
        raise fail("model", f"a model with rows for the chat tokens (vocab_size > {end}; see extend_vocab)", model)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=1)
    context = getattr(model, "context_size", None)
    if context is not None and len(ids) >= context:
        raise ArgumentError(f"messages: the conversation is {len(ids)} tokens, and the model's context is {context}: "
                            f"no room is left for the answer; drop earlier turns or shorten the messages")
    out = generate(model, torch.tensor(ids), max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   stop_ids=[end], generator=generator).tolist()
    if out and out[-1] == end:
        out = out[:-1]
    return tokenizer.decode(out)


def add_chat_tokens(tokenizer):
    """A copy of ``tokenizer`` with :data:`CHAT_TOKENS` as special tokens, given the next free ids
    (``vocab_size`` and ``vocab_size + 1``): every id it had keeps its meaning. A tokenizer that already
    has them is returned as it is."""
    return add_special_tokens(tokenizer, CHAT_TOKENS, "chat tokens")


def add_special_tokens(tokenizer, tokens, what: str = "special tokens"):
    """A copy of a course tokenizer with ``tokens`` as special tokens at the next free ids, so every id it
    had keeps its meaning (a pretrained model then needs rows only for the new ids, :func:`extend_vocab`).
    A tokenizer that has all of them is returned as it is; one that has only some is refused."""
    from llmcourse.tokenization import BPETokenizer, CharTokenizer

    if not isinstance(tokenizer, (BPETokenizer, CharTokenizer)):
        raise fail("tokenizer", "a BPETokenizer or CharTokenizer", tokenizer)
    have = [t for t in tokens if t in tokenizer.special_tokens]
    if len(have) == len(tokens):
        return tokenizer
    if have:
        raise ArgumentError(f"tokenizer has {have} but not all of {list(tokens)}; start from the tokenizer "
                            f"without {what}")
    return tokenizer.with_special_tokens(list(tokens))


@torch.no_grad()
def extend_vocab(model: nn.Module, vocab_size: int) -> nn.Module:
    """Give a :class:`~llmcourse.transformer.TransformerLM` rows for new token ids, in place: its
    embedding and output head grow to ``vocab_size`` rows; the old rows are kept exactly, the new ones
    start as the mean of the old (a common choice: a new token starts as an "average" token, and the
    model's outputs for old text do not change). Returns the model."""
    import dataclasses

    from llmcourse.transformer import TransformerLM

    if not isinstance(model, TransformerLM):
        raise fail("model", "a TransformerLM", model)
    old = model.config.vocab_size
    vocab_size = check_int("vocab_size", vocab_size, minimum=old)
    if vocab_size == old:
        return model
    tied = model.config.tie_embeddings
    emb = model.embed.tok.weight
    grown = torch.cat([emb, emb.mean(0, keepdim=True).expand(vocab_size - old, -1)])
    model.embed.tok = nn.Embedding(vocab_size, emb.shape[1], device=emb.device, dtype=emb.dtype)
    model.embed.tok.weight.copy_(grown)
    head = model.head.weight
    model.head = nn.Linear(head.shape[1], vocab_size, bias=False, device=head.device, dtype=head.dtype)
    if tied:
        model.head.weight = model.embed.tok.weight
    else:
        model.head.weight.copy_(torch.cat([head, head.mean(0, keepdim=True).expand(vocab_size - old, -1)]))
    model.config = dataclasses.replace(model.config, vocab_size=vocab_size)
    model.embed.config = model.config
    model.vocab_size = vocab_size
    return model


@torch.no_grad()
def grow_for_chat(base: nn.Module, vocab_size: int, block_size: int | None = None) -> nn.Module:
    """The start of supervised fine-tuning: a new :class:`~llmcourse.transformer.TransformerLM` with
    ``base``'s weights, rows for ``vocab_size`` ids (:func:`extend_vocab`) and, if given, a longer context
    ``block_size`` (a rotary model has no position table, so the same weights read longer text; SFT then
    teaches it the longer distances). ``base`` itself is left unchanged."""
    import dataclasses

    from llmcourse.transformer import TransformerLM

    if not isinstance(base, TransformerLM):
        raise fail("base", "a TransformerLM", base)
    if block_size is not None:
        block_size = check_int("block_size", block_size, minimum=base.config.block_size)
        if base.config.position not in ("rope", "none"):
            raise ArgumentError(f"block_size: only a model with rotary (or no) positions can read a longer context; "
                                f"this one has {base.config.position!r} positions")
    config = dataclasses.replace(base.config, block_size=block_size or base.config.block_size)
    model = TransformerLM(config).to(next(base.parameters()).device)
    model.load_state_dict(base.state_dict())
    return extend_vocab(model, vocab_size)
