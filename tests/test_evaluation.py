"""The metrics (llmcourse.evaluation), each against values computed by hand, and bad input."""

import math

import pytest
import torch

from llmcourse import evaluation as ev
from llmcourse import instructions
from llmcourse.checks import ArgumentError


def test_perplexity_and_bits():
    assert ev.perplexity(4 * math.log(8), 4) == pytest.approx(8.0)          # uniform over 8 tokens
    assert ev.bits_per_byte(10 * math.log(2), 5) == pytest.approx(2.0)      # 10 bits over 5 bytes
    assert ev.bits_per_character(3 * math.log(2), 3) == pytest.approx(1.0)
    # one loss, two tokenizers: 12 characters as 12 char tokens or as 3 BPE tokens; bits per byte agree
    total = 12 * 1.5
    assert ev.perplexity(total, 12) != ev.perplexity(total, 3)
    assert ev.bits_per_byte(total, len("to be or not".encode())) == pytest.approx(total / (12 * math.log(2)))


def test_answers_accuracy_exact_match_and_f1():
    assert ev.accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert ev.exact_match([" To be  or", "NOT"], ["To be or", "not"]) == 0.5   # spaces no, case yes
    assert instructions.exact_match is ev.exact_match                          # one implementation
    assert ev.token_f1("the cat sat", "the cat sat") == 1.0
    # prediction 'the cat' vs answer 'the cat sat down': precision 2/2, recall 2/4 -> F1 = 2/3
    assert ev.token_f1("the cat", "the cat sat down") == pytest.approx(2 / 3)
    # repeats count once per match: 'the the the' vs 'the cat': common 1, P 1/3, R 1/2 -> 0.4
    assert ev.token_f1("the the the", "the cat") == pytest.approx(0.4)
    assert ev.token_f1("", "") == 1.0 and ev.token_f1("x", "") == 0.0 and ev.token_f1("dog", "cat") == 0.0


def test_pass_at_k_matches_the_definition():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 1, 10), (5, 0, 2), (6, 6, 3), (8, 6, 3)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert ev.pass_at_k(n, c, k) == pytest.approx(exact)
    assert ev.pass_at_k(10, 3, 1) == pytest.approx(0.3)                      # one sample: the share right


def test_reliability_and_ece_by_hand():
    conf = [0.95, 0.85, 0.85, 0.65, 0.55, 0.0, 1.0]
    right = [1, 1, 0, 1, 0, 0, 1]
    bins = ev.reliability_bins(conf, right, n_bins=2)                      # [0, 0.5] and (0.5, 1]
    assert [b["count"] for b in bins] == [1, 6]
    assert bins[0]["accuracy"] == 0.0 and bins[0]["confidence"] == 0.0
    assert bins[1]["accuracy"] == pytest.approx(4 / 6) and bins[1]["confidence"] == pytest.approx(4.85 / 6)
    assert ev.expected_calibration_error(conf, right, n_bins=2) == pytest.approx(6 / 7 * abs(4 / 6 - 4.85 / 6))
    # ten bins: 0.85 and 0.85 share a bin (one right): |0.5 - 0.85| * 2/7, and so on
    want = (abs(1 - 0.95) + 2 * abs(0.5 - 0.85) + abs(1 - 0.65) + abs(0 - 0.55) + 0 + 0) / 7
    assert ev.expected_calibration_error(conf, right) == pytest.approx(want)
    assert ev.expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3) == pytest.approx(0.0)


def test_temperature_scaling_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=g) * 2
    labels = torch.multinomial(torch.softmax(true_logits, -1), 1, generator=g)[:, 0]
    over = true_logits * 3                                                  # an over-confident model: T = 3 undoes it
    t = ev.fit_temperature(over, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    conf_before, pred = ev.confidences(over)
    conf_after, pred_after = ev.confidences(over, temperature=t)
    assert torch.equal(pred, pred_after)                                     # the ranking does not move
    right = (pred == labels)
    assert ev.expected_calibration_error(conf_after, right) < ev.expected_calibration_error(conf_before, right) / 3
    nll = lambda T: float(torch.nn.functional.cross_entropy(over / T, labels))   # noqa: E731
    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1))


def test_bad_input_is_refused():
    with pytest.raises(ArgumentError, match="n_tokens"):
        ev.perplexity(1.0, 0)
    with pytest.raises(ArgumentError, match="predictions and labels"):
        ev.accuracy([1], [1, 2])
    with pytest.raises(ArgumentError, match="c must"):
        ev.pass_at_k(5, 6, 1)
    with pytest.raises(ArgumentError, match="k must"):
        ev.pass_at_k(5, 1, 6)
    with pytest.raises(ArgumentError, match="confidences"):
        ev.expected_calibration_error([1.2], [1])
    with pytest.raises(ArgumentError, match="correct"):
        ev.reliability_bins([0.5], [2])
    with pytest.raises(ArgumentError, match="confidences and correct"):
        ev.reliability_bins([0.5, 0.6], [1])
    with pytest.raises(ArgumentError, match="labels"):
        ev.fit_temperature(torch.zeros(3, 2), [0, 1, 2])
    with pytest.raises(ArgumentError, match="temperature"):
        ev.confidences(torch.zeros(3, 2), temperature=0)


def test_accuracy_coverage_by_hand():
    # sorted by confidence: 0.9 right, 0.8 wrong, 0.8 right (a tie: answered together), 0.3 wrong
    thresholds, coverage, acc = ev.accuracy_coverage([0.8, 0.3, 0.9, 0.8], [0, 0, 1, 1])
    assert thresholds == [0.9, 0.8, 0.3]
    assert coverage == [0.25, 0.75, 1.0]
    assert acc == pytest.approx([1.0, 2 / 3, 0.5])
    with pytest.raises(ArgumentError, match="confidences"):
        ev.accuracy_coverage([1.5], [1])


def test_prediction_logits_are_the_models_at_the_targets_only():
    from llmcourse.lm import IGNORE_INDEX, MaskedExamples
    from llmcourse.transformer import TransformerConfig, TransformerLM

    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.llama(11, 16, n_layer=1, n_head=2, n_embd=16))
    a = (torch.tensor([1, 2, 3, 4]), torch.tensor([IGNORE_INDEX, 3, 4, 5]))
    b = (torch.tensor([6, 7]), torch.tensor([7, IGNORE_INDEX]))
    logits, labels = ev.prediction_logits(model, MaskedExamples([a, b]))
    assert labels.tolist() == [3, 4, 5, 7]
    with torch.no_grad():
        alone_a, alone_b = model(a[0][None])[0][0], model(b[0][None])[0][0]
    torch.testing.assert_close(logits, torch.stack([alone_a[1], alone_a[2], alone_a[3], alone_b[0]]))
    assert ev.prediction_logits(model, MaskedExamples([a, b]), max_targets=2)[1].tolist() == [3, 4]
    with pytest.raises(ArgumentError, match="examples"):
        ev.prediction_logits(model, [a])


def test_text_loss_is_bits_per_byte_of_the_tokens_after_the_first():
    import math

    from llmcourse import zoo
    from llmcourse.lm import evaluate

    model, card = zoo.load("bpe-transformer-shakespeare")
    tok = zoo.tokenizer(card)
    text = "ROMEO:\nBut, soft! what light through yonder window breaks? — It is the east."
    got = ev.text_loss(model, tok, text)
    ids = tok.encode(text)
    m = evaluate(model, ids)
    predicted_bytes = len(text.encode("utf-8")) - len(tok.decode(list(ids[:1])).encode("utf-8"))
    assert got["loss_nats"] == m["loss_nats"] and got["n_tokens"] == len(ids) - 1
    assert got["bits_per_byte"] == pytest.approx(m["loss_nats"] * (len(ids) - 1) / (predicted_bytes * math.log(2)))
    assert ev.text_loss(model, tok, text, ids) == got
    with pytest.raises(ArgumentError, match="text"):
        ev.text_loss(model, tok, "R")
