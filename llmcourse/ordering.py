"""Ordering-bot conversations: a seeded generator of orders taken in a tavern, and their evaluation.

The classic first chatbot built on a language model is the **OrderBot**: its *system message holds the
menu*, and the bot takes a customer's order by reading it. A bot that learnt this well does not remember
menus; it reads the one in front of it. This module lets the course measure that on a tiny model.

The setting is a tavern in Shakespeare's London (the course's model was pretrained on Shakespeare, so
words such as ale, sack, bread and pie are short to it). A menu lists 3 or 4 dishes, each in one size or
in two (little and great), at 1 to 9 pence::

    Menu: ale little 2 great 3; pie 4; bread 1; egg little 2 great 4.

Every conversation follows one small state machine (:func:`dialogue`):

1. the customer orders a dish, the quantity in words ("Two great ales, please."); if they leave out the
   size of a two-size dish the bot asks "Little or great?" and they answer ("Great.");
2. the bot confirms in digits: "2 great ale." (a one-size dish: "1 pie.");
3. sometimes the customer asks for a dish this menu does not have: "Sorry, we have no stew.";
4. after 1 to 3 dishes the customer is done; the bot asks "Pickup or delivery?" and, once told, sums
   up in one fixed, machine-readable format (each line's price is quantity × unit price)::

       2 great ale 6, 1 pie 4. Total 10. Delivery.

Steps 1 to 3 need the menu (which dishes exist, which come in two sizes), so they are where a bot that
does not read it fails; step 4 needs the whole conversation and some arithmetic.

**Held-out dishes.** Training menus draw from :data:`TRAIN_ITEMS`; :data:`HELDOUT_ITEMS` never appear in
training (``pool="heldout"``). A bot that confirms "2 great trout" or refuses eel on a menu it has never
seen is reading its menu, not reciting one.

**Length.** Every conversation fits in 230 tokens of the course's chat tokenizer (the tiny model's
context is 256), and chat markup alone costs 6 or 7 tokens a message. So the lines are short, the sizes
are "little" and "great" (one token each to this tokenizer; "small" and "large" take two and three),
and a conversation holds at most :data:`BUSY` of: dishes ordered, a refused dish, size questions.

:func:`parse_summary` reads the summary format back, :func:`score` compares a summary with the truth
field by field, and :func:`evaluate` runs any ``reply(messages) -> str`` through whole conversations,
either on the true history (teacher forcing) or on its own earlier replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from llmcourse.checks import ArgumentError, check_choice, check_int, check_str, fail

__all__ = [
    "ASK_MODE",
    "ASK_SIZE",
    "BUSY",
    "HELDOUT_ITEMS",
    "POOLS",
    "SIZES",
    "TRAIN_ITEMS",
    "TURN_KINDS",
    "Dialogue",
    "Menu",
    "MenuItem",
    "OrderLine",
    "Summary",
    "chat_bot",
    "dialogue",
    "dialogues",
    "evaluate",
    "parse_summary",
    "pool_items",
    "random_menu",
    "score",
    "summary_text",
]

#: Dishes and drinks of training menus: single lower-case words whose plural adds an "s". There are many
#: of them on purpose: with a handful, a small model learns the names by heart and writes a familiar dish
#: for any it does not know; with many, copying the name from the customer's message is what pays.
TRAIN_ITEMS: tuple[str, ...] = (
    "ale", "beer", "wine", "sack", "milk", "rum", "gin", "tea", "broth", "soup", "stew", "pie", "tart", "cake",
    "bun", "bread", "scone", "cookie", "toast", "butter", "apple", "pear", "fig", "grape", "orange", "olive",
    "lemon", "melon", "onion", "leek", "bean", "pea", "nut", "pickle", "roast", "steak", "chop", "beef", "pork",
    "veal", "lamb", "hen", "capon", "goose", "duck", "quail", "fish", "carp", "pike", "crab", "egg", "liver",
    "tongue", "marrow", "cream")
#: Dishes never seen in training: do the bot's skills carry over to names it only reads on the menu?
HELDOUT_ITEMS: tuple[str, ...] = ("ham", "plum", "mead", "trout", "quince", "eel", "cider", "herring")
#: Where a menu's dishes come from: the training dishes, the held-out ones, or ``"words"``: any short word of
#: the plays' train split standing in for a dish (see :func:`pool_items`).
POOLS = {"train": TRAIN_ITEMS, "heldout": HELDOUT_ITEMS, "words": None}
#: The sizes of a two-size dish, cheaper first. A one-size dish has the single size ``None``.
SIZES: tuple[str, str] = ("little", "great")

_NUMBERS = ("one", "two", "three", "four")
# The customer's lines: one phrasing is drawn per turn. ``{n}`` is e.g. "two great ales".
_ORDER = ("{N}, please.", "I want {n}.", "Give me {n}.", "I will have {n}.")
_DONE = ("That is all.", "Nothing more.", "No more.", "That will do.")
_MODE_SAY = {"pickup": ("I will pick it up.", "Pickup, please."), "delivery": ("Delivery, please.", "Bring it to me.")}
ASK_SIZE, ASK_MODE = "Little or great?", "Pickup or delivery?"
#: At most this many of: dishes ordered, a refused dish, "Little or great?" questions (the length budget).
BUSY = 3
#: The kinds of assistant turn, in the order they can happen (``Dialogue.turns`` names each turn's kind).
TURN_KINDS = ("ask_size", "confirm", "refuse", "ask_mode", "summary")


@dataclass(frozen=True)
class MenuItem:
    """A dish and its prices: ``(("little", 2), ("great", 3))``, or one size: ``((None, 4),)``."""

    name: str
    prices: tuple[tuple[str | None, int], ...]

    @property
    def sizes(self) -> tuple[str | None, ...]:
        return tuple(s for s, _ in self.prices)

    def text(self) -> str:
        return " ".join([self.name] + [f"{s} {p}" if s else str(p) for s, p in self.prices])


@dataclass(frozen=True)
class Menu:
    """The dishes on offer; :meth:`text` is the bot's system message."""

    items: tuple[MenuItem, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)

    def text(self) -> str:
        return "Menu: " + "; ".join(i.text() for i in self.items) + "."

    def item(self, name: str) -> MenuItem:
        for i in self.items:
            if i.name == name:
                return i
        raise ArgumentError(f"item must be on the menu {list(self.names)}; got {name!r}")

    def price(self, item: str, size: str | None = None) -> int:
        """The unit price of ``item`` in ``size`` (``None`` for a one-size dish)."""
        entry = self.item(check_str("item", item))
        prices = dict(entry.prices)
        if size not in prices:
            raise fail("size", f"one of {entry.sizes} for {item}", size)
        return prices[size]


@dataclass(frozen=True)
class OrderLine:
    item: str
    size: str | None
    quantity: int

    def text(self) -> str:
        """How the bot writes it: "2 great ale", "1 pie"."""
        return f"{self.quantity} {self.size + ' ' if self.size else ''}{self.item}"


@dataclass(frozen=True)
class Summary:
    """A parsed summary: the lines, each line's stated price, the stated total and the mode."""

    lines: tuple[OrderLine, ...]
    prices: tuple[int, ...]
    total: int
    mode: str


@dataclass(frozen=True)
class Dialogue:
    """One conversation: the menu, the true order (``lines``, ``mode``: "pickup" or "delivery", ``total``)
    and the chat ``messages``, the first being the system message ``menu.text()``.

    ``turns`` names the kind of each assistant message in order (:data:`TURN_KINDS`); ``refused`` are the
    dishes asked for that the menu does not have."""

    menu: Menu
    lines: tuple[OrderLine, ...]
    mode: str
    messages: list[dict[str, str]]
    total: int
    turns: tuple[str, ...]
    refused: tuple[str, ...]

    @property
    def summary(self) -> str:
        return self.messages[-1]["content"]


_WORDS: list[tuple[str, ...]] = []


def pool_items(pool: str) -> tuple[str, ...]:
    """The dish names of ``pool``. ``"words"`` is thousands of short words (3 to 5 letters) from the train
    split of the plays, used as made-up dishes: with a few dozen real dishes a small model learns their
    names by heart and, shown a dish it does not know, writes a familiar one ("3 great cider" becomes
    "3 great crab"); with thousands of names, copying the name from the customer's message is the only
    thing that works. No held-out dish, and no word the conversations use otherwise, is among them."""
    pool = check_choice("pool", pool, tuple(POOLS))
    if POOLS[pool] is not None:
        return POOLS[pool]
    if not _WORDS:
        from llmcourse.datasets import load_shakespeare

        used = set(TRAIN_ITEMS) | set(SIZES) | set(_NUMBERS) | {"total", "pickup", "delivery", "sorry", "menu",
                                                                "please", "nothing", "more", "that", "will", "have",
                                                                "give", "want", "bring", "pick", "with"}
        counts: dict[str, int] = {}
        for w in re.findall(r"[A-Za-z]+", load_shakespeare("train")):
            counts[w.lower()] = counts.get(w.lower(), 0) + 1
        # common words only: they are few tokens long, which keeps every conversation in the length budget
        _WORDS.append(tuple(sorted(w for w, c in counts.items() if c >= 5 and 3 <= len(w) <= 5 and w not in used
                                   and not any(h in w for h in HELDOUT_ITEMS))))
    return _WORDS[0]


def random_menu(rng: np.random.Generator, pool: str = "train", n_items: int | None = None) -> Menu:
    """A menu of ``n_items`` (default: 3 or 4) dishes from ``pool``, each one-size or two-size at random,
    prices 1 to 9, the great dearer than the little."""
    if not isinstance(rng, np.random.Generator):
        raise fail("rng", "a numpy.random.Generator (np.random.default_rng(seed))", rng)
    names = pool_items(pool)
    n_items = int(rng.integers(3, 5)) if n_items is None else check_int("n_items", n_items, minimum=1,
                                                                         maximum=min(4, len(names) - 1))
    items = []
    for k in rng.choice(len(names), size=n_items, replace=False):
        if rng.random() < 0.5:
            small, large = sorted(rng.choice(np.arange(1, 10), size=2, replace=False).tolist())
            items.append(MenuItem(names[k], ((SIZES[0], small), (SIZES[1], large))))
        else:
            items.append(MenuItem(names[k], ((None, int(rng.integers(1, 10))),)))
    return Menu(tuple(items))


def summary_text(lines, prices, total: int, mode: str) -> str:
    """The summary format: "2 great ale 6, 1 pie 4. Total 10. Delivery."."""
    lines, prices = list(lines), [check_int("prices", p, minimum=0) for p in prices]
    if not lines or len(lines) != len(prices) or not all(isinstance(line, OrderLine) for line in lines):
        raise fail("lines", f"a non-empty list of OrderLine, one per price ({len(prices)})", lines)
    total, mode = check_int("total", total, minimum=0), check_choice("mode", mode, ("pickup", "delivery"))
    body = ", ".join(f"{line.text()} {p}" for line, p in zip(lines, prices))
    return f"{body}. Total {total}. {mode.capitalize()}."


def _say(rng, choices) -> str:
    return choices[int(rng.integers(len(choices)))]


def _order_words(quantity: int, size: str | None, item: str) -> str:
    # A plural is the name plus "s": the dishes are chosen so that this reads well enough.
    return f"{_NUMBERS[quantity - 1]} {size + ' ' if size else ''}{item}{'s' if quantity > 1 else ''}"


def _build(rng: np.random.Generator, pool: str) -> Dialogue:
    names = pool_items(pool)
    menu = random_menu(rng, pool)
    # The length budget: each dish ordered, a refused dish and each "Little or great?" adds two turns, and
    # at most BUSY of them fit in 230 tokens (each message costs 6 or 7 tokens of chat markup alone).
    n_lines = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    refuse = n_lines < BUSY and bool(rng.random() < 0.3)
    asks_left = BUSY - n_lines - refuse
    events: list[tuple[str, object]] = []
    for k in rng.choice(len(menu.items), size=n_lines, replace=False):
        item = menu.items[k]
        size = item.sizes[int(rng.integers(len(item.sizes)))]
        ask = size is not None and asks_left > 0 and bool(rng.random() < 0.4)
        asks_left -= ask
        events.append(("order", (OrderLine(item.name, size, int(rng.integers(1, 5))), ask)))
    if refuse:
        absent = [n for n in names if n not in menu.names]
        events.insert(int(rng.integers(len(events) + 1)), ("refuse", absent[int(rng.integers(len(absent)))]))

    messages = [{"role": "system", "content": menu.text()}]
    turns, lines, refused = [], [], []

    def turn(user: str, kind: str, assistant: str) -> None:
        messages.extend([{"role": "user", "content": user}, {"role": "assistant", "content": assistant}])
        turns.append(kind)

    for kind, what in events:
        if kind == "refuse":
            size = _say(rng, SIZES + (None, None))  # the customer may name a size; there is no such dish anyway
            words = _order_words(int(rng.integers(1, 5)), size, what)
            turn(_say(rng, _ORDER).format(n=words, N=words.capitalize()), "refuse", f"Sorry, we have no {what}.")
            refused.append(what)
            continue
        line, ask = what
        words = _order_words(line.quantity, None if ask else line.size, line.item)
        user = _say(rng, _ORDER).format(n=words, N=words.capitalize())
        if ask:
            turn(user, "ask_size", ASK_SIZE)
            user = _say(rng, (f"{line.size.capitalize()}.", f"{line.size.capitalize()}, please."))
        turn(user, "confirm", f"{line.text()}.")
        lines.append(line)
    mode = _say(rng, ("pickup", "delivery"))
    turn(_say(rng, _DONE), "ask_mode", ASK_MODE)
    prices = [line.quantity * menu.price(line.item, line.size) for line in lines]
    turn(_say(rng, _MODE_SAY[mode]), "summary", summary_text(lines, prices, sum(prices), mode))
    return Dialogue(menu, tuple(lines), mode, messages, sum(prices), tuple(turns), tuple(refused))


def dialogue(seed: int, pool: str = "train") -> Dialogue:
    """One conversation, drawn with ``seed`` from menus of ``pool`` (``"train"`` or ``"heldout"``)."""
    seed = check_int("seed", seed, minimum=0)
    pool = check_choice("pool", pool, tuple(POOLS))
    return _build(np.random.default_rng((seed, list(POOLS).index(pool))), pool)


def dialogues(n: int, pool: str = "train", seed: int = 0) -> list[Dialogue]:
    """``n`` conversations from one seeded stream (the first is ``dialogue(seed, pool)``)."""
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    pool = check_choice("pool", pool, tuple(POOLS))
    rng = np.random.default_rng((seed, list(POOLS).index(pool)))
    return [_build(rng, pool) for _ in range(n)]


_LINE = rf"(\d+) (?:({SIZES[0]}|{SIZES[1]}) )?([a-z]+) (\d+)"
_SUMMARY = re.compile(rf"({_LINE}(?:, {_LINE})*)\. Total (\d+)\. (Pickup|Delivery)\.")


def parse_summary(text: str) -> Summary | None:
    """``text`` read as a summary ("2 great ale 6, 1 pie 4. Total 10. Delivery."), or ``None`` when it is
    not in that format (white space around it is allowed; nothing else is)."""
    match = _SUMMARY.fullmatch(check_str("text", text).strip())
    if match is None:
        return None
    parts = [re.fullmatch(_LINE, part).groups() for part in match.group(1).split(", ")]
    lines = tuple(OrderLine(item, size, int(q)) for q, size, item, _ in parts)
    return Summary(lines, tuple(int(p) for *_, p in parts), int(match.group(10)), match.group(11).lower())


def score(dialogue: Dialogue, summary: str) -> dict:
    """How right ``summary`` (the bot's last turn) is for ``dialogue``, field by field.

    ``well_formed``: it parses; ``items_correct``: the same set of dishes; ``slots_correct``: the same
    lines (dish, size, quantity; order ignored); ``slot_accuracy``: the share of true lines it has exactly;
    ``invented``: how many of its lines name a dish not on the menu; ``total_correct``: the stated total
    is the true one; ``mode_correct``: pickup or delivery as the customer said.
    """
    if not isinstance(dialogue, Dialogue):
        raise fail("dialogue", "a Dialogue (from ordering.dialogue or ordering.dialogues)", dialogue)
    d = dialogue
    parsed = parse_summary(check_str("summary", summary))
    if parsed is None:
        return {"well_formed": False, "items_correct": False, "slots_correct": False, "slot_accuracy": 0.0,
                "invented": 0, "total_correct": False, "mode_correct": False}
    key = lambda line: (line.item, line.size or "", line.quantity)  # noqa: E731 -- sortable with None sizes
    true, said = sorted(map(key, d.lines)), sorted(map(key, parsed.lines))
    return {"well_formed": True,
            "items_correct": {line.item for line in d.lines} == {line.item for line in parsed.lines},
            "slots_correct": true == said,
            "slot_accuracy": sum(t in said for t in true) / len(true),
            "invented": sum(line.item not in d.menu.names for line in parsed.lines),
            "total_correct": parsed.total == d.total,
            "mode_correct": parsed.mode == d.mode}


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _clean(text: str) -> str:
    """A reply as it can stay in the history: no special-token strings, never empty (the template refuses
    both)."""
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        text = text.replace(special, " ")
    return text.strip() or "..."


def evaluate(reply: Callable[[list], str], dialogues, history: str = "model") -> dict:
    """Run ``reply(messages) -> str`` (the assistant's next turn after a user message) through each
    conversation and return mean rates.

    ``history="gold"``: every turn is asked on the true conversation so far (teacher forcing: one slip does
    not spoil the next turn); ``"model"``: the bot's own earlier replies stay in the history (the scripted
    customer says the same things whatever it answered). The result has the means of :func:`score`'s
    fields over the final summaries, ``confirm_accuracy`` (the share of "Little or great?", confirmation and
    "Sorry, we have no ..." turns written exactly), ``turn_accuracy`` by turn kind (``None`` where there
    were none), and ``rows``: one dict per conversation with its turns (kind, gold, reply) and its score.
    """
    if not callable(reply):
        raise fail("reply", "a function reply(messages) -> str", reply)
    history = check_choice("history", history, ("model", "gold"))
    if isinstance(dialogues, Dialogue) or not isinstance(dialogues, (list, tuple)) or not dialogues:
        raise fail("dialogues", "a non-empty list of Dialogue", dialogues)
    rows = []
    for i, d in enumerate(dialogues):
        if not isinstance(d, Dialogue):
            raise fail(f"dialogues[{i}]", "a Dialogue", d)
        gold = [dict(m) for m in d.messages]
        talk, turns = gold[:2], []
        for k, kind in enumerate(d.turns):
            at = 2 + 2 * k                                  # the index of this assistant turn in gold
            said = reply([dict(m) for m in (gold[:at] if history == "gold" else talk)])
            if not isinstance(said, str):
                raise fail("reply", "a function returning a str", said)
            turns.append((kind, gold[at]["content"], said))
            talk = talk + [{"role": "assistant", "content": _clean(said)}] + gold[at + 1:at + 2]
        rows.append({"index": i, "turns": turns, "summary": turns[-1][2], **score(d, turns[-1][2])})
    out = {key: float(np.mean([r[key] for r in rows])) for key in
           ("well_formed", "items_correct", "slots_correct", "slot_accuracy", "invented", "total_correct",
            "mode_correct")}
    checked = [_same(g, s) for r in rows for kind, g, s in r["turns"] if kind in ("ask_size", "confirm", "refuse")]
    out["confirm_accuracy"] = float(np.mean(checked)) if checked else None
    hits = {kind: [_same(g, s) for r in rows for k, g, s in r["turns"] if k == kind] for kind in TURN_KINDS}
    out["turn_accuracy"] = {kind: float(np.mean(h)) if h else None for kind, h in hits.items()}
    return {**out, "n": len(rows), "rows": rows}


def chat_bot(model, tokenizer, *, max_new_tokens: int = 48, **sampling) -> Callable[[list], str]:
    """A ``reply(messages)`` for :func:`evaluate` from a chat model: :func:`llmcourse.chat.respond` with
    ``sampling`` (temperature, top_k, top_p, generator). A conversation that no longer fits the model's
    context (its own long replies can push it over) gets an empty reply, which is scored as wrong, instead
    of stopping the evaluation."""
    from llmcourse import chat

    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=1)
    context = getattr(model, "context_size", None)

    def reply(messages) -> str:
        if context is not None and len(chat.render(tokenizer, messages, add_generation_prompt=True)[0]) >= context:
            return ""
        return chat.respond(model, tokenizer, messages, max_new_tokens=max_new_tokens, **sampling)

    return reply
