"""Neural language models: a Bengio-style MLP, and RNN / GRU / LSTM language models.

An n-gram model (:mod:`llmcourse.ngram`) looks a context up in a table of counts, so it knows nothing
about a context it never saw and nothing about how similar two contexts are. A neural language model
replaces the table with a function: every token gets a learned vector (an *embedding*), and a network
maps the vectors of the context to a distribution over the next token. Similar contexts then get similar
predictions, and the number of parameters no longer grows with the number of distinct contexts.

- :class:`MLPLanguageModel` (Bengio et al. 2003) still has a fixed window: it concatenates the
  embeddings of the last ``context`` tokens and feeds them through one tanh hidden layer.
- A recurrent network reads one token at a time and carries a hidden state ``h_t``, a summary of
  *everything* it has read so far: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``. The window is
  gone. :class:`RNNCell` and :class:`ScratchRNN` write that loop out in Python and match
  ``torch.nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` exactly; :class:`RecurrentLanguageModel` uses torch's fused
  modules, which compute the same thing much faster.
- Training a recurrent network back-propagates through time (BPTT): the gradient reaching ``h_t`` from
  the loss at step ``T`` is multiplied by one Jacobian per step in between, so it shrinks or grows
  geometrically (vanishing / exploding gradients; :func:`hidden_state_gradient_norms`,
  :func:`set_spectral_radius`). Clipping bounds the exploding case; the LSTM's and GRU's gated,
  additive state updates are the fix for the vanishing one.

Every model here has the same interface, so one loop trains them all and one function scores them::

    logits, state = model(ids, state)   # ids: (batch, time) -> logits: (batch, time, vocab_size)

``logits[:, t]`` predicts ``ids[:, t + 1]`` from ``ids[:, :t + 1]`` (and whatever ``state`` carries from
the chunk before). Passing the returned state into the next call continues the text, which is how
:func:`llmcourse.training.train_language_model` does truncated BPTT and how :func:`llmcourse.lm.evaluate`
scores a whole split. The interface itself, :class:`llmcourse.lm.LanguageModel`, is shared by every model
of the course; ``LanguageModel``, ``evaluate`` and ``detach_state`` stay importable from here for one
release.

Training and scoring the LSTM of notebook 03 (about a minute on 2 CPU cores; see
``benchmarks/rnn_speed.py`` for how these settings were chosen)::

    from llmcourse.datasets import load_shakespeare
    from llmcourse.tokenization import CharTokenizer

    train, val = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train)
    train_ids, val_ids = vocab.encode(train), vocab.encode(val)
    torch.manual_seed(0)
    model = RecurrentLanguageModel(vocab.size, d_embed=32, d_hidden=256, cell="lstm")
    history = train_language_model(model, train_ids, val_ids, steps=2000, batch_size=32, seq_len=64,
                                   lr=1e-2, eval_every=500)
    evaluate(model, val_ids)["bits_per_char"]        # about 2.02 (Kneser-Ney, order 8: 1.92)
    vocab.decode(model.sample(vocab.encode("ROMEO:"), 200, temperature=0.8,
                              generator=torch.Generator().manual_seed(0)).numpy())
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, check_token_ids
# The language-model base moved to llmcourse.lm; these names stay importable from here for one release.
from llmcourse.lm import LanguageModel, detach_state, evaluate  # noqa: F401


__all__ = [
    "CELLS",
    "GRUCell",
    "LSTMCell",
    "LanguageModel",
    "MLPLanguageModel",
    "RNNCell",
    "RecurrentLanguageModel",
    "ScratchRNN",
    "TrainingHistory",
    "detach_state",
    "evaluate",
    "hidden_state_gradient_norms",
    "set_spectral_radius",
    "spectral_radius",
    "train_language_model",
]

#: The recurrent cells :class:`RecurrentLanguageModel` and :class:`ScratchRNN` accept.
CELLS = ("rnn", "gru", "lstm")

_TORCH_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _check_cell(cell: str) -> str:
    return check_choice("cell", cell, CELLS)


# ----------------------------------------------------------------------------------------------------
# Bengio et al. (2003): a fixed window of embeddings -> tanh hidden layer -> softmax


class MLPLanguageModel(LanguageModel):
    """A neural n-gram model: P(x_{t+1} | x_{t-context+1} ... x_t) from concatenated embeddings.

        e = [E x_{t-context+1}; ...; E x_t]            (context * d_embed,)
        h = tanh(W_h e + b_h)                           (d_hidden,)
        logits = W_o h + b_o                            (vocab_size,)

    Like an n-gram model of order ``context + 1``, it sees only the last ``context`` tokens, but similar
    tokens get similar embeddings, so what it learns about one context carries over to similar ones.
    At the start of a text the missing tokens are a padding id (one extra embedding row, learned, that
    means "before the start"). The state is the last ``context`` ids read, so a text cut into chunks is
    scored exactly as if it were read in one piece.

    Args:
        vocab_size: V, >= 1.
        context: how many previous tokens the model sees, >= 1.
        d_embed: the size of each token's embedding.
        d_hidden: the width of the tanh hidden layer.
    """

    def __init__(self, vocab_size: int, context: int = 8, d_embed: int = 16, d_hidden: int = 512):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size)
        self.context = check_int("context", context)
        d_embed, d_hidden = check_int("d_embed", d_embed), check_int("d_hidden", d_hidden)
        self.pad_id = self.vocab_size  # the extra row: only ever an input, never predicted
        self.embed = nn.Embedding(self.vocab_size + 1, d_embed)
        self.hidden = nn.Linear(self.context * d_embed, d_hidden)
        self.head = nn.Linear(d_hidden, self.vocab_size)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """``(batch, context)`` padding ids: the model has read nothing yet."""
        return torch.full((batch_size, self.context), self.pad_id, dtype=torch.long, device=self._device())

    def forward(self, ids, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids: (B, T)``, ``state: (B, context)`` or None -> ``logits: (B, T, V)``, the new state."""
        ids = self._check_forward_ids(ids)
        B, T = ids.shape
        C = self.context
        if state is None:
            state = self.initial_state(B)
        elif tuple(state.shape) != (B, C):
            raise ArgumentError(f"state must have shape (batch, context) = {(B, C)}; got {tuple(state.shape)}")
        x = torch.cat([state, ids], dim=1)  # (B, C + T): the C ids before the chunk, then the chunk
        e = self.embed(x)  # (B, C + T, d_embed)
        # Window j of unfold covers x[j : j + C]; the one ending at ids[t] starts at j = t + 1.
        windows = e.unfold(1, C, 1)[:, 1:]  # (B, T, d_embed, C)
        windows = windows.transpose(2, 3).reshape(B, T, -1)  # (B, T, C * d_embed), oldest token first
        h = torch.tanh(self.hidden(windows))  # (B, T, d_hidden)
        return self.head(h), x[:, -C:]


# ----------------------------------------------------------------------------------------------------
# recurrent cells from scratch: one time step each, same parameter names and gate order as torch


class RNNCell(nn.Module):
    """The Elman RNN step: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    ``forward(x: (B, input_size), h: (B, hidden_size)) -> h: (B, hidden_size)``. Parameters are named and
    initialised as in ``torch.nn.RNN`` (uniform in ``[-1/sqrt(hidden), 1/sqrt(hidden)]``).
    """

    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = check_int("input_size", input_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        G, H = self.n_gates, self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(G * H, H))
        self.bias_ih = nn.Parameter(torch.empty(G * H))
        self.bias_hh = nn.Parameter(torch.empty(G * H))
        bound = 1 / math.sqrt(H)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch_size: int, device=None):
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)


class GRUCell(RNNCell):
    """The GRU step (Cho et al. 2014), torch's gate order (reset r, update z, candidate n)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    ``h'`` is a gated *average* of the old state and a candidate: where ``z`` is near 1 the state is
    copied through unchanged, and so is the gradient, which is why it does not vanish.
    """

    n_gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi = x @ self.weight_ih.T + self.bias_ih  # (B, 3H)
        gh = h @ self.weight_hh.T + self.bias_hh  # (B, 3H)
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class LSTMCell(RNNCell):
    """The LSTM step (Hochreiter & Schmidhuber 1997, with a forget gate), torch's gate order i, f, g, o::

        i, f, o = sigmoid(...), g = tanh(...)      each W_i* x + b_i* + W_h* h + b_h*
        c' = f * c + i * g                          the cell state: updated by addition
        h' = o * tanh(c')

    The state is the pair ``(h, c)``. Because ``c'`` is ``f * c`` plus something, d c'/d c = f: with the
    forget gate open the gradient flows back through ``c`` without being squashed at every step.
    """

    n_gates = 4

    def initial_state(self, batch_size: int, device=None):
        return (torch.zeros(batch_size, self.hidden_size, device=device),) * 2

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


_SCRATCH_CELLS = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}


class ScratchRNN(nn.Module):
    """A one-layer recurrent network with an explicit Python loop over time: the reference for BPTT.

    Same interface and shapes as ``torch.nn.RNN / GRU / LSTM(input_size, hidden_size, batch_first=True)``::

        outputs, state = ScratchRNN(8, 16)(x)        # x: (B, T, 8) -> outputs: (B, T, 16)
        # state: h_T (1, B, 16), or (h_T, c_T) for cell="lstm" -- the leading 1 is torch's layer axis

    :meth:`from_torch` copies the weights of a torch module in, :meth:`to_torch` builds the torch module
    with these weights; the outputs then agree to float rounding (the tests check 1e-6).

    Args:
        input_size, hidden_size: the sizes of ``x_t`` and ``h_t``.
        cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
    """

    def __init__(self, input_size: int, hidden_size: int, cell: str = "rnn"):
        super().__init__()
        self.cell_type = _check_cell(cell)
        self.cell = _SCRATCH_CELLS[cell](input_size, hidden_size)

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    def forward(self, x: torch.Tensor, state=None):
        """``x: (B, T, input_size)``, ``state`` as torch's (or None for zeros) -> ``(outputs, state)``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != self.input_size:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ArgumentError(f"x must have shape (batch, time, {self.input_size}); got {shape}")
        B, T, _ = x.shape
        if state is None:
            s = self.cell.initial_state(B, device=x.device)
        else:  # torch's (1, B, H) layout -> (B, H)
            s = tuple(t[0] for t in state) if self.cell_type == "lstm" else state[0]
        outputs = []
        for t in range(T):  # the whole point: one step at a time, h_t depends on h_{t-1}
            s = self.cell(x[:, t], s)
            outputs.append(s[0] if self.cell_type == "lstm" else s)
        out = torch.stack(outputs, dim=1)  # (B, T, H)
        final = tuple(t[None] for t in s) if self.cell_type == "lstm" else s[None]
        return out, final

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> ScratchRNN:
        """A ScratchRNN with the weights of a one-layer, unidirectional, batch-first torch RNN/GRU/LSTM."""
        cell = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}.get(type(module))
        if cell is None:
            raise ArgumentError(f"module must be a torch.nn.RNN, GRU or LSTM; got {type(module).__name__}")
        if module.num_layers != 1 or module.bidirectional or not module.batch_first or not module.bias:
            raise ArgumentError(
                "module must have num_layers=1, bidirectional=False, batch_first=True and bias=True"
            )
        if cell == "rnn" and module.nonlinearity != "tanh":
            raise ArgumentError(f"module must use nonlinearity='tanh'; got {module.nonlinearity!r}")
        if getattr(module, "proj_size", 0):
            raise ArgumentError("module must have proj_size=0")
        scratch = cls(module.input_size, module.hidden_size, cell).to(module.weight_ih_l0.device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(scratch.cell, name).copy_(getattr(module, f"{name}_l0"))
        return scratch

    def to_torch(self) -> nn.RNNBase:
        """The equivalent ``torch.nn.RNN / GRU / LSTM(batch_first=True)`` with a copy of these weights."""
        module = _TORCH_MODULES[self.cell_type](self.input_size, self.hidden_size, batch_first=True)
        module = module.to(self.cell.weight_ih.device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{name}_l0").copy_(getattr(self.cell, name))
        return module


# ----------------------------------------------------------------------------------------------------
# the recurrent language model: embedding -> torch's fused RNN / GRU / LSTM -> linear head


class RecurrentLanguageModel(LanguageModel):
    """Embedding -> ``n_layers`` of RNN, GRU or LSTM -> a linear layer to the vocabulary.

    It uses torch's fused ``nn.RNN / nn.GRU / nn.LSTM`` (the same maths as :class:`ScratchRNN`, but the
    loop over time runs in C++ and the input projections of all time steps are one matrix product).

    The state is torch's: ``h`` of shape ``(n_layers, B, d_hidden)``, or the pair ``(h, c)`` for an LSTM;
    ``None`` means zeros (the start of a text).

    Args:
        vocab_size: V, >= 1.
        d_embed: the size of the token embeddings.
        d_hidden: the size of the hidden state of every layer.
        n_layers: stacked recurrent layers, >= 1.
        cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
        dropout: dropout on the embeddings, between layers and before the head (0 = none).
    """

    def __init__(
        self,
        vocab_size: int,
        d_embed: int = 32,
        d_hidden: int = 256,
        n_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size)
        d_embed, d_hidden = check_int("d_embed", d_embed), check_int("d_hidden", d_hidden)
        self.n_layers = check_int("n_layers", n_layers)
        self.cell = _check_cell(cell)
        dropout = check_number("dropout", dropout, minimum=0.0, maximum=1.0, strict_max=True)
        if dropout >= 1:
            raise ArgumentError(f"dropout must be in [0, 1); got {dropout!r}")
        self.embed = nn.Embedding(self.vocab_size, d_embed)
        self.drop = nn.Dropout(dropout)
        self.rnn = _TORCH_MODULES[cell](
            d_embed, d_hidden, self.n_layers, batch_first=True, dropout=dropout if self.n_layers > 1 else 0.0
        )
        self.head = nn.Linear(d_hidden, self.vocab_size)

    def forward(self, ids, state=None):
        """``ids: (B, T)``, ``state`` (torch's, or None) -> ``logits: (B, T, V)``, the new state."""
        ids = self._check_forward_ids(ids)
        x = self.drop(self.embed(ids))  # (B, T, d_embed)
        h, state = self.rnn(x, state)  # h: (B, T, d_hidden), the top layer's state at every step
        return self.head(self.drop(h)), state


# ----------------------------------------------------------------------------------------------------
# training lives in llmcourse.training (notebook 05 grows it into a full pretraining loop); the names
# notebooks 03 and 04 import from here still work.

_MOVED_TO_TRAINING = ("SCHEDULES", "TrainingHistory", "train_language_model", "_lr_factor")


def __getattr__(name: str):
    if name in _MOVED_TO_TRAINING:
        from llmcourse import training

        return getattr(training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------------
# vanishing and exploding gradients


def spectral_radius(weight: torch.Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix: how much repeated multiplication by it can
    stretch a vector per step, in the long run."""
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ArgumentError(f"weight must be a square matrix; got {getattr(weight, 'shape', type(weight))}")
    return float(torch.linalg.eigvals(weight.detach().double().cpu()).abs().max())


def _recurrent_weights(module) -> list[torch.Tensor]:
    if isinstance(module, torch.Tensor):
        return [module]
    weights = [p for name, p in module.named_parameters() if name.split(".")[-1].startswith("weight_hh")]
    if not weights:
        raise ArgumentError(f"module must have recurrent weights (weight_hh*); {type(module).__name__} has none")
    return weights


@torch.no_grad()
def set_spectral_radius(module, radius: float):
    """Scale every recurrent matrix ``W_hh`` of ``module`` in place so its spectral radius is ``radius``.

    For a tanh RNN, radius < 1 makes the backward Jacobian products shrink geometrically (vanishing
    gradients); radius well above 1 makes them grow (exploding gradients), until tanh saturates. For a
    GRU or LSTM each gate's ``(H, H)`` block is scaled separately.

    Args:
        module: an :class:`RNNCell`, :class:`ScratchRNN`, :class:`RecurrentLanguageModel`, a torch
            ``nn.RNN`` / ``GRU`` / ``LSTM``, or a square weight tensor itself.
        radius: the target spectral radius, > 0.

    Returns:
        ``module``, so the call can be chained.
    """
    radius = check_number("radius", radius, minimum=0.0, strict=True)
    for w in _recurrent_weights(module):
        H = w.shape[1]
        if w.dim() != 2 or w.shape[0] % H:
            raise ArgumentError(f"module: a recurrent weight of shape {tuple(w.shape)} is not (H, H) blocks")
        for block in w.split(H, dim=0):  # (H, H) per gate
            current = spectral_radius(block)
            if current == 0:
                raise ArgumentError("module: a recurrent weight block is all zeros; its radius cannot be scaled")
            block.mul_(radius / current)
    return module


def hidden_state_gradient_norms(model, inputs, state=None) -> torch.Tensor:
    """``||d loss_T / d s_t||`` for every step t: how much the last step's loss can still "hear" step t.

    The states ``s_1 .. s_T`` are computed one step at a time and kept in the graph, so after one
    backward pass the gradient at ``s_t`` is the total derivative through all later steps,
    ``d loss / d s_t = J_{t+1}^T ... J_T^T d loss / d s_T``, a product of one Jacobian per step. Its norm
    shrinks or grows geometrically in T - t: a log-scale plot against t shows vanishing or exploding
    gradients at a glance. For an LSTM the state is ``(h, c)`` and the norm is over both.

    Args:
        model: either
            - a :class:`RecurrentLanguageModel` (its fused module is stepped one token at a time):
              ``inputs`` are ids ``(B, T + 1)``; the model reads ``inputs[:, :T]`` and the loss is the
              cross-entropy of its prediction at the last step against ``inputs[:, T]``;
            - a :class:`ScratchRNN` or a cell (:class:`RNNCell`, :class:`GRUCell`, :class:`LSTMCell`):
              ``inputs`` are vectors ``(B, T, input_size)`` and the "loss" is ``h_T.sum()``, so the
              gradient at ``h_T`` is all ones and everything before it is the Jacobian product alone.
        inputs: as above.
        state: an initial state (default zeros).

    Returns:
        ``(T,)`` float tensor: entry t is ``||d loss / d s_{t+1}||`` (the state after reading input t),
        averaged over the batch.
    """
    if isinstance(model, RecurrentLanguageModel):
        ids = check_token_ids("inputs", inputs, model.vocab_size, ndim=2).to(model._device())
        if ids.shape[1] < 2:
            raise ArgumentError(f"inputs must be ids of shape (batch, T + 1), T >= 1; got {tuple(ids.shape)}")
        xs, target = model.embed(ids[:, :-1]), ids[:, -1]

        def step(x_t, s):  # one step of the fused module: (B, d_embed) -> the new state
            return model.rnn(x_t[:, None], s)[1]

        def loss_fn(s):
            h_top = (s[0] if isinstance(s, tuple) else s)[-1]  # (B, d_hidden): the top layer
            return F.cross_entropy(model.head(h_top), target)

    else:
        cell = model.cell if isinstance(model, ScratchRNN) else model
        if not isinstance(cell, RNNCell):
            raise ArgumentError(
                "model must be a RecurrentLanguageModel, a ScratchRNN or a cell (RNNCell, GRUCell, "
                f"LSTMCell); got {type(model).__name__}"
            )
        xs = inputs
        ok = isinstance(xs, torch.Tensor) and xs.dim() == 3 and xs.shape[2] == cell.input_size
        if not ok or xs.shape[1] < 1:
            shape = tuple(xs.shape) if isinstance(xs, torch.Tensor) else type(xs).__name__
            raise ArgumentError(f"inputs must have shape (batch, T, {cell.input_size}) with T >= 1; got {shape}")
        # Inputs that require grad keep every state in the graph even if the weights are frozen.
        xs = xs.detach().float().requires_grad_(True)
        if state is None:
            state = cell.initial_state(xs.shape[0], device=xs.device)
        step = cell

        def loss_fn(s):
            return (s[0] if isinstance(s, tuple) else s).sum()

    was_training = model.training
    model.eval()  # no dropout between layers: the same function at every step
    try:
        states, s = [], state
        for t in range(xs.shape[1]):
            s = step(xs[:, t], s)
            states.append(s if isinstance(s, tuple) else (s,))
        flat = [part for s_t in states for part in s_t]
        # autograd.grad with respect to the intermediate states gives each one's *total* derivative
        # (through every later step), and leaves the parameters' .grad untouched.
        grads = torch.autograd.grad(loss_fn(s), flat, allow_unused=True)
    finally:
        model.train(was_training)
    norms, k = [], 0
    for s_t in states:
        sq = 0.0
        for part in s_t:
            g = grads[k] if grads[k] is not None else torch.zeros_like(part)
            k += 1
            sq = sq + g.pow(2).sum(dim=-1)  # (B,) for a cell's (B, H); (layers, B) for torch's state
        sq = sq.sum(dim=0) if sq.dim() == 2 else sq  # sum over layers -> (B,)
        norms.append(sq.sqrt().mean())  # the norm per sequence, averaged over the batch
    return torch.stack(norms).detach()
