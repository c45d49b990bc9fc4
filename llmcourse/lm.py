"""The language-model base: what every model of the course shares, and how any of them is scored.

Every model in the course -- the MLP and recurrent models of notebook 03 (:mod:`llmcourse.rnn`), the
Transformers of notebooks 04-06 (:mod:`llmcourse.transformer`) and every model Part III adapts -- is a
:class:`LanguageModel` with one calling convention::

    logits, state = model(ids, state)   # ids: (batch, time) -> logits: (batch, time, vocab_size)

``logits[:, t]`` predicts ``ids[:, t + 1]`` from ``ids[:, :t + 1]`` (and whatever ``state`` carries from
the chunk before: a recurrent model's hidden state, a Transformer's last window). Because the
interface is one, one trainer (:mod:`llmcourse.training`) trains them all, one function here
(:func:`evaluate`) scores them all on a text, and one decoder (:mod:`llmcourse.generation`) samples
from them all.

- :class:`LanguageModel`: the interface, parameter counting, and plain sampling.
- :func:`evaluate`: the mean loss (nats, bits per character, perplexity) of a whole text.
- :func:`token_streams`: a token stream cut into contiguous rows -- the batching that evaluation and
  the trainer share.
- :func:`detach_state`: truncated back-propagation through time.
- :class:`MaskedExamples` and :func:`masked_loss`: separate examples of different lengths whose targets
  are partly masked (:data:`IGNORE_INDEX`), as supervised fine-tuning trains on them; the trainer
  takes them in place of a token stream.

This module sits at the bottom of the package, above :mod:`llmcourse.checks` only.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import ArgumentError, check_int, check_number, check_token_ids

__all__ = ["IGNORE_INDEX", "LanguageModel", "MaskedExamples", "detach_state", "evaluate", "masked_loss",
           "token_streams"]

#: A target that the loss skips: ``torch.nn.functional.cross_entropy``'s ``ignore_index`` default.
IGNORE_INDEX = -100


# ----------------------------------------------------------------------------------------------------
# the shared interface


class LanguageModel(nn.Module):
    """What every model of the course shares: ``logits, state = model(ids, state)`` and sampling.

    Subclasses set ``self.vocab_size`` and implement ``forward(ids, state=None) -> (logits, state)`` with
    ``ids: (batch, time)`` and ``logits: (batch, time, vocab_size)``.
    """

    vocab_size: int
    #: The most tokens the model can read at once (a Transformer's block size), or None (no limit).
    context_size: int | None = None
    #: Whether training should carry the state from one chunk to the next (truncated BPTT). A
    #: Transformer reads independent windows instead.
    carries_state: bool = True

    def auxiliary_loss(self) -> torch.Tensor | None:
        """A loss to add to the cross-entropy during training (a mixture-of-experts balance term), or None."""
        return None

    def num_parameters(self) -> int:
        """The number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_forward_ids(self, ids) -> torch.Tensor:
        ids = check_token_ids("ids", ids, self.vocab_size, ndim=2, min_length=1)
        return ids.to(self._device())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(
        self,
        prefix_ids,
        n: int = 200,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate ``n`` tokens after ``prefix_ids``: ``(n,)`` int64 (the prefix is not included).

        The model reads the prefix once, then feeds each new token back in with the state it returned,
        so a recurrent model does O(1) work per new token rather than re-reading the whole text.

        Args:
            prefix_ids: ``(T,)`` ids to continue, T >= 1 (the first prediction needs one token to read).
            n: how many tokens to generate, >= 0.
            temperature: >= 0. Logits are divided by it before the softmax: 1 samples the model as it
                is, below 1 sharpens, above 1 flattens; 0 is greedy (argmax; ties go to the lowest id).
            generator: a seeded ``torch.Generator`` (on the model's device) makes the sample repeatable.
        """
        prefix = check_token_ids("prefix_ids", prefix_ids, self.vocab_size, ndim=1, min_length=1)
        n = check_int("n", n, minimum=0)
        temperature = check_number("temperature", temperature, minimum=0.0)
        was_training = self.training
        self.eval()  # no dropout while generating
        try:
            out = torch.empty(n, dtype=torch.long)
            if self.context_size is not None:
                prefix = prefix[-self.context_size :]  # a fixed-context model reads the last window
            logits, state = self(prefix[None].to(self._device()))
            for i in range(n):
                last = logits[0, -1].float()  # (vocab_size,)
                if temperature == 0:
                    nxt = int(torch.argmax(last))
                else:
                    probs = torch.softmax(last / temperature, dim=-1)
                    nxt = int(torch.multinomial(probs, 1, generator=generator))
                out[i] = nxt
                if i + 1 < n:  # read the new token: the state now includes it
                    logits, state = self(torch.tensor([[nxt]], device=self._device()), state)
            return out
        finally:
            self.train(was_training)


# ----------------------------------------------------------------------------------------------------
# evaluation: the whole split, read as a few long streams with the state carried between chunks


def token_streams(ids: torch.Tensor, n_streams: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a text into ``n_streams`` contiguous rows: ``inputs, targets: (n_streams, L)``.

    Every token but the first is a target exactly once; the end of the last row is padded with input 0
    and target -100 (ignored by ``F.cross_entropy``) when the count does not divide evenly.
    """
    inputs, targets = ids[:-1], ids[1:]
    L = -(-len(targets) // n_streams)  # ceil
    pad = n_streams * L - len(targets)
    inputs = torch.cat([inputs, inputs.new_zeros(pad)])
    targets = torch.cat([targets, targets.new_full((pad,), -100)])
    return inputs.view(n_streams, L), targets.view(n_streams, L)


@torch.no_grad()
def evaluate(model: LanguageModel, ids, seq_len: int = 512, batch_size: int = 16) -> dict[str, float]:
    """Score a whole text: the mean loss of predicting every token from all the tokens before it.

    The text is cut into ``batch_size`` contiguous streams read side by side in chunks of ``seq_len``,
    carrying each stream's state from one chunk to the next, so a recurrent model sees its full history
    (up to the start of its stream) and the MLP its full window. The result hardly depends on
    ``seq_len`` and ``batch_size`` (only the first few tokens of each stream have less context: on the
    470k-character Shakespeare validation split an LSTM scores 2.0378 bits per character read as one
    stream, 2.0382 as 16, 2.0432 as 256); they trade speed for memory. 16 streams are as fast as more
    on a CPU (about 2.5 s for that split with a 256-unit LSTM on 2 cores). Deterministic: dropout is
    off and nothing is sampled.

    Args:
        model: any :class:`LanguageModel`.
        ids: ``(T,)`` token ids, T >= 2.
        seq_len, batch_size: the chunk length and the number of streams.

    Returns:
        ``loss_nats`` (mean cross-entropy per predicted token), ``bits_per_char`` (= loss / ln 2, for a
        character model), ``perplexity`` (= exp(loss)) and ``n_tokens`` (T - 1, the tokens predicted).
    """
    if not isinstance(model, nn.Module) or not hasattr(model, "vocab_size"):
        raise ArgumentError(f"model must be a llmcourse LanguageModel; got {type(model).__name__}")
    ids = check_token_ids("ids", ids, model.vocab_size, ndim=1, min_length=2)
    seq_len, batch_size = check_int("seq_len", seq_len), check_int("batch_size", batch_size)
    if model.context_size is not None:
        # A fixed-context model (a Transformer) reads chunks of half its context, each after the half
        # context before it, so every token is predicted from at least half a context of text.
        seq_len = min(seq_len, max(1, model.context_size // 2))
    batch_size = min(batch_size, len(ids) - 1)
    inputs, targets = token_streams(ids, batch_size)
    device = model._device()
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    try:
        for start in range(0, inputs.shape[1], seq_len):
            x = inputs[:, start : start + seq_len].to(device)
            y = targets[:, start : start + seq_len].to(device)
            logits, state = model(x, state)
            logits = logits.reshape(-1, logits.shape[-1]).float()  # (B * T, V)
            loss = F.cross_entropy(logits, y.reshape(-1), reduction="sum")
            total += float(loss)  # float64 on the host: no rounding drift over half a million tokens
    finally:
        model.train(was_training)
    loss = total / (len(ids) - 1)
    return {"loss_nats": loss, "bits_per_char": loss / math.log(2), "perplexity": math.exp(loss),
            "n_tokens": len(ids) - 1}


# ----------------------------------------------------------------------------------------------------
# truncated BPTT


def detach_state(state):
    """Cut the autograd graph behind a recurrent state (a tensor, a tuple of tensors, or ``None``).

    Truncated BPTT: the state still carries what the model read in earlier chunks, but gradients stop
    at the chunk boundary, so memory and time per step do not grow with the length of the text.
    """
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ----------------------------------------------------------------------------------------------------
# examples with masked targets


class MaskedExamples:
    """Separate examples of different lengths, each an ``(inputs, targets)`` pair of ``(T_i,)`` token ids
    where ``targets[t]`` is the token to predict after ``inputs[: t + 1]`` or :data:`IGNORE_INDEX` where
    nothing is to be learnt (a prompt, a user's turn): what :func:`llmcourse.chat.sft_example` makes.

    :meth:`batch` right-pads a batch of them to its longest with ``pad_id`` inputs and ignored targets.
    That is exact for a causal model: a real token attends only to the tokens before it, never to the
    padding after it, and a padded position has no target, so every example's loss is what it would be
    alone (the tests check it against one example at a time).

    Args:
        examples: a sequence of ``(inputs, targets)`` pairs (lists, arrays or tensors), each at least one
            token long, the two of one length, with at least one target that is not ignored.
        pad_id: the input id of padding (any valid id: padding is never attended to, nor scored).
    """

    def __init__(self, examples, pad_id: int = 0):
        if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence) or not len(examples):
            raise ArgumentError(f"examples must be a non-empty list of (inputs, targets) pairs; got "
                                f"{type(examples).__name__}")
        self.pad_id = check_int("pad_id", pad_id, minimum=0)
        self.inputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        for i, pair in enumerate(examples):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ArgumentError(f"examples[{i}] must be an (inputs, targets) pair; got {type(pair).__name__}")
            x, y = (torch.as_tensor(a).long() for a in pair)
            if x.dim() != 1 or len(x) < 1 or y.shape != x.shape:
                raise ArgumentError(f"examples[{i}]: inputs and targets must be 1-D and equally long (at least 1 "
                                    f"token); got shapes {tuple(x.shape)} and {tuple(y.shape)}")
            if int(x.min()) < 0 or int(y.min()) < IGNORE_INDEX or bool(((y < 0) & (y != IGNORE_INDEX)).any()):
                raise ArgumentError(f"examples[{i}]: ids must be >= 0 (targets may also be IGNORE_INDEX = "
                                    f"{IGNORE_INDEX}); got inputs min {int(x.min())}, targets min {int(y.min())}")
            if not bool((y != IGNORE_INDEX).any()):
                raise ArgumentError(f"examples[{i}]: every target is ignored, so there is nothing to learn from it")
            self.inputs.append(x)
            self.targets.append(y)
        self.lengths: list[int] = [len(x) for x in self.inputs]

    def __len__(self) -> int:
        return len(self.inputs)

    def __repr__(self) -> str:
        return (f"MaskedExamples({len(self)} examples, {self.n_tokens:,} tokens, {self.n_targets:,} targets, "
                f"longest {self.max_length})")

    @property
    def max_length(self) -> int:
        return max(self.lengths)

    @property
    def n_tokens(self) -> int:
        return sum(self.lengths)

    @property
    def n_targets(self) -> int:
        """The number of targets that are not ignored: what the loss is averaged over."""
        return sum(int((y != IGNORE_INDEX).sum()) for y in self.targets)

    def max_id(self) -> int:
        return max(max(int(x.max()), int(y.max())) for x, y in zip(self.inputs, self.targets))

    def batch(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``index`` (a list of positions), right-padded: ``(inputs, targets)``, ``(B, L)`` each with
        L their longest length; padding has input ``pad_id`` and target :data:`IGNORE_INDEX`."""
        index = [int(i) for i in index]
        length = max(len(self.inputs[i]) for i in index)
        x = torch.full((len(index), length), self.pad_id, dtype=torch.long)
        y = torch.full((len(index), length), IGNORE_INDEX, dtype=torch.long)
        for row, i in enumerate(index):
            n = len(self.inputs[i])
            x[row, :n], y[row, :n] = self.inputs[i], self.targets[i]
        return x, y

    def fingerprint(self) -> str:
        """sha256 of every example (a checkpoint must be resumed on the examples it was trained on)."""
        h = hashlib.sha256()
        for x, y in zip(self.inputs, self.targets):
            h.update(len(x).to_bytes(8, "little"))
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
        return h.hexdigest()


@torch.no_grad()
def masked_loss(model: LanguageModel, examples: MaskedExamples, batch_size: int = 16) -> dict[str, float]:
    """The mean loss (nats) over the targets of ``examples`` that are not ignored, each example read on its
    own (no state carried between them), in eval mode: ``{"loss_nats", "n_targets"}``."""
    if not isinstance(model, nn.Module) or not hasattr(model, "vocab_size"):
        raise ArgumentError(f"model must be a llmcourse LanguageModel; got {type(model).__name__}")
    if not isinstance(examples, MaskedExamples):
        raise ArgumentError(f"examples must be a MaskedExamples; got {type(examples).__name__}")
    batch_size = check_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for start in range(0, len(examples), batch_size):
            x, y = examples.batch(range(start, min(start + batch_size, len(examples))))
            logits, _ = model(x.to(device))
            y = y.to(device)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                                           reduction="sum"))
            count += int((y != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
    return {"loss_nats": total / count, "n_targets": count}
