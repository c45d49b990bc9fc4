"""The course's metrics in one tested place.

- **Language modelling**: :func:`perplexity` (e^(mean loss in nats)) and :func:`bits_per_byte` (total loss
  in bits over the UTF-8 bytes of the text). Perplexity depends on the tokenizer (a token of a BPE model
  covers several characters); bits per byte does not, so it compares a character model with a BPE model
  (nanochat reports it for that reason). :func:`bits_per_character` is the same over characters.
- **Answers**: :func:`accuracy`, :func:`exact_match` (after :func:`normalise_answer`; case matters),
  :func:`token_f1` (word overlap, SQuAD-style, for answers that can be partly right) and :func:`pass_at_k`,
  the unbiased estimate (Chen et al. 2021) that at least one of k samples is right, from n samples of
  which c were.
- **Calibration** (Guo et al. 2017): is a model that says 80% right 80% of the time?
  :func:`reliability_bins` groups predictions by confidence (the reliability diagram);
  :func:`expected_calibration_error` is ``sum_m |B_m|/n * |acc(B_m) - conf(B_m)|``; :func:`fit_temperature`
  finds the one temperature T that minimises the negative log-likelihood of ``softmax(logits / T)`` on
  validation data (temperature scaling: the ranking, so the accuracy, is unchanged; only the confidence
  moves). :func:`prediction_logits` collects a language model's next-token logits and the true next
  tokens, so all of these apply to it.
- **Abstention**: :func:`accuracy_coverage` is the curve a confidence threshold gives: answer only the
  questions the model is most sure of, and how often is it right on those?
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from llmcourse.checks import ArgumentError, check_int, check_number, check_str, fail

__all__ = ["accuracy", "accuracy_coverage", "bits_per_byte", "bits_per_character", "confidences", "exact_match",
           "expected_calibration_error", "fit_temperature", "normalise_answer", "pass_at_k", "perplexity",
           "prediction_logits", "reliability_bins", "text_loss", "token_f1"]


def perplexity(total_nats: float, n_tokens: int) -> float:
    """``exp(total_nats / n_tokens)``: the number of equally likely tokens the model is as unsure as."""
    n_tokens = check_int("n_tokens", n_tokens, minimum=1)
    return math.exp(check_number("total_nats", total_nats, minimum=0.0) / n_tokens)


def bits_per_byte(total_nats: float, n_bytes: int) -> float:
    """The total loss in bits per UTF-8 byte of the text it was measured on (``total_nats / (n_bytes ln 2)``):
    independent of the tokenizer."""
    n_bytes = check_int("n_bytes", n_bytes, minimum=1)
    return check_number("total_nats", total_nats, minimum=0.0) / (n_bytes * math.log(2))


def text_loss(model, tokenizer, text: str, ids=None) -> dict[str, float]:
    """A language model's loss on ``text`` in its own tokenizer (:func:`llmcourse.lm.evaluate`: every token
    after the first), as ``{"loss_nats", "n_tokens", "bits_per_byte"}``: :func:`bits_per_byte` over the UTF-8
    bytes those tokens spell. ``ids``: the text's ids, if already encoded."""
    from llmcourse.lm import evaluate

    text = check_str("text", text)
    ids = tokenizer.encode(text) if ids is None else ids
    if len(ids) < 2:
        raise fail("text", "a text of at least two tokens", text)
    m = evaluate(model, ids)
    n_bytes = len(text.encode("utf-8")) - len(tokenizer.decode([int(i) for i in ids[:1]]).encode("utf-8"))
    return {"loss_nats": m["loss_nats"], "n_tokens": m["n_tokens"],
            "bits_per_byte": bits_per_byte(m["loss_nats"] * m["n_tokens"], n_bytes)}


def bits_per_character(total_nats: float, n_characters: int) -> float:
    """The total loss in bits per character of the text it was measured on."""
    return bits_per_byte(total_nats, check_int("n_characters", n_characters, minimum=1))


def _pairs(predictions, answers, what: str = "answers") -> tuple[list, list]:
    predictions, answers = list(predictions), list(answers)
    if len(predictions) != len(answers) or not answers:
        raise ArgumentError(f"predictions and {what} must be equally long and not empty; got {len(predictions)} "
                            f"and {len(answers)}")
    return predictions, answers


def accuracy(predictions, labels) -> float:
    """The share of ``predictions`` equal to ``labels``."""
    predictions, labels = _pairs(predictions, labels, "labels")
    return sum(p == y for p, y in zip(predictions, labels)) / len(labels)


def normalise_answer(text: str) -> str:
    """What exact match compares: surrounding white space removed, inner runs of it made one space."""
    return " ".join(check_str("text", text).split())


def exact_match(predictions, answers) -> float:
    """The share of ``predictions`` equal to ``answers`` after :func:`normalise_answer` (case matters:
    ``upper`` is a task)."""
    predictions, answers = _pairs(predictions, answers)
    return sum(normalise_answer(p) == normalise_answer(a) for p, a in zip(predictions, answers)) / len(answers)


def token_f1(prediction: str, answer: str) -> float:
    """Word-overlap F1 of one prediction against one answer (lower-cased, split on white space): the harmonic
    mean of the share of predicted words that are in the answer and the share of answer words predicted,
    counting repeats. 1 if both are empty, 0 if only one is."""
    pred = check_str("prediction", prediction).lower().split()
    gold = check_str("answer", answer).lower().split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate that at least one of ``k`` samples is right, given ``n`` samples of which ``c``
    were right: ``1 - C(n - c, k) / C(n, k)``, computed as a stable product."""
    n = check_int("n", n, minimum=1)
    c = check_int("c", c, minimum=0, maximum=n)
    k = check_int("k", k, minimum=1, maximum=n)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1 - k / i for i in range(n - c + 1, n + 1))


def _calibration_inputs(conf, correct) -> tuple[torch.Tensor, torch.Tensor]:
    conf = torch.as_tensor(conf, dtype=torch.float64).flatten()
    correct = torch.as_tensor(correct).flatten().to(torch.float64)
    if conf.numel() == 0 or conf.numel() != correct.numel():
        raise ArgumentError(f"confidences and correct must be equally long and not empty; got {conf.numel()} "
                            f"and {correct.numel()}")
    if bool(((conf < 0) | (conf > 1)).any()) or bool(torch.isnan(conf).any()):
        raise fail("confidences", "probabilities in [0, 1]", conf)
    if not bool(((correct == 0) | (correct == 1)).all()):
        raise fail("correct", "True/False (or 1/0) per prediction", correct)
    return conf, correct


def reliability_bins(confidences_, correct, n_bins: int = 10) -> list[dict]:
    """The reliability diagram's bins: ``n_bins`` equal-width confidence intervals (the first closed on both
    sides), each ``{"low", "high", "count", "confidence", "accuracy"}`` (mean confidence and share right of
    the predictions in it; None for an empty bin)."""
    conf, correct = _calibration_inputs(confidences_, correct)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    index = torch.clamp(torch.ceil(conf * n_bins).long() - 1, min=0)       # (low, high]; 0 goes to the first
    out = []
    for b in range(n_bins):
        inside = index == b
        count = int(inside.sum())
        out.append({"low": b / n_bins, "high": (b + 1) / n_bins, "count": count,
                    "confidence": float(conf[inside].mean()) if count else None,
                    "accuracy": float(correct[inside].mean()) if count else None})
    return out


def expected_calibration_error(confidences_, correct, n_bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy in each bin of :func:`reliability_bins`, weighted by the
    share of predictions in the bin. 0 is perfectly calibrated."""
    bins = reliability_bins(confidences_, correct, n_bins)
    n = sum(b["count"] for b in bins)
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])


def confidences(logits, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(confidence, prediction)`` per row of ``logits`` ``(N, classes)``: the largest probability of
    ``softmax(logits / temperature)`` and its class."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise fail("logits", "an (N, classes) tensor with at least 2 classes", logits)
    temperature = check_number("temperature", temperature, minimum=0.0, strict=True)
    probs = torch.softmax(logits / temperature, dim=-1)
    conf, pred = probs.max(dim=-1)
    return conf, pred


def fit_temperature(logits, labels, *, low: float = 0.05, high: float = 20.0, tol: float = 1e-6) -> float:
    """The temperature T in [low, high] that minimises the mean negative log-likelihood of
    ``softmax(logits / T)`` for ``labels``: a golden-section search over 1/T, on which the NLL is convex
    (so the search finds the minimum, deterministically, with no optimiser settings)."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    labels = torch.as_tensor(labels).long().flatten()
    if logits.dim() != 2 or logits.shape[0] != labels.numel() or logits.shape[0] == 0:
        raise fail("logits", f"an (N, classes) tensor with one row per label ({labels.numel()} labels)", logits)
    if bool(((labels < 0) | (labels >= logits.shape[1])).any()):
        raise fail("labels", f"class indices in [0, {logits.shape[1]})", labels)
    low = check_number("low", low, minimum=0.0, strict=True)
    high = check_number("high", high, minimum=low, strict=True)

    def nll(beta: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits * beta, labels))

    a, b = 1 / high, 1 / low
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    while b - a > tol * max(1.0, a):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return 1 / ((a + b) / 2)



def accuracy_coverage(confidences_, correct) -> tuple[list[float], list[float], list[float]]:
    """The accuracy-coverage curve of abstaining below a confidence threshold: ``(thresholds, coverage,
    accuracy)``, one point per distinct confidence, from the highest threshold down. At threshold ``t``
    the model answers the predictions with confidence >= t: ``coverage`` is their share of all, and
    ``accuracy`` the share of those that are right. The last point (the lowest threshold) answers all."""
    conf, correct = _calibration_inputs(confidences_, correct)
    order = torch.argsort(conf, descending=True, stable=True)
    conf, correct = conf[order], correct[order]
    hits = torch.cumsum(correct, 0)
    thresholds, coverage, acc = [], [], []
    n = len(conf)
    for k in range(n):
        if k + 1 < n and conf[k + 1] == conf[k]:
            continue                                  # ties are answered together
        thresholds.append(float(conf[k]))
        coverage.append((k + 1) / n)
        acc.append(float(hits[k]) / (k + 1))
    return thresholds, coverage, acc


@torch.no_grad()
def prediction_logits(model, examples, *, max_targets: int | None = None, batch_size: int = 16
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """A language model's next-token predictions where there is something to predict: ``(logits (N, V),
    labels (N,))`` over the targets of ``examples`` (a :class:`~llmcourse.lm.MaskedExamples`: only the
    targets not ignored, e.g. the assistant's tokens of chat conversations), in order, each example read
    on its own, at most ``max_targets`` of them. Feed them to :func:`confidences`,
    :func:`expected_calibration_error` and :func:`fit_temperature`."""
    from llmcourse.lm import IGNORE_INDEX, MaskedExamples

    if not isinstance(model, torch.nn.Module) or not hasattr(model, "vocab_size"):
        raise fail("model", "a course language model", model)
    if not isinstance(examples, MaskedExamples):
        raise fail("examples", "a MaskedExamples (e.g. from llmcourse.chat.sft_examples)", examples)
    max_targets = None if max_targets is None else check_int("max_targets", max_targets, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    was_training = model.training
    model.eval()
    logits_out, labels_out, n = [], [], 0
    try:
        for start in range(0, len(examples), batch_size):
            x, y = examples.batch(range(start, min(start + batch_size, len(examples))))
            logits = model(x)[0].float()
            keep = y != IGNORE_INDEX
            logits_out.append(logits[keep])
            labels_out.append(y[keep])
            n += int(keep.sum())
            if max_targets is not None and n >= max_targets:
                break
    finally:
        model.train(was_training)
    logits, labels = torch.cat(logits_out), torch.cat(labels_out)
    return (logits, labels) if max_targets is None else (logits[:max_targets], labels[:max_targets])
