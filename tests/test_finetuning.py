"""Fine-tuning for classification: the genre task and its splits, the baselines, pooling with padding,
what set_trainable leaves trainable, a training loop that learns, and bad input."""

import math

import pytest
import torch

from llmcourse import finetuning as ft
from llmcourse.checks import ArgumentError
from llmcourse.datasets import shakespeare_plays
from llmcourse.transformer import TransformerConfig, TransformerLM


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def splits():
    return {s: ft.genre_passages(s) for s in ft.SPLITS}


@pytest.fixture(scope="module")
def plays():
    return {p.slug: p for p in shakespeare_plays()}


def tiny_lm(seed=0, **kw):
    torch.manual_seed(seed)
    settings = dict(n_layer=2, n_head=2, n_embd=16)
    settings.update(kw)
    return TransformerLM(TransformerConfig.llama(12, 16, **settings))


# ---------------------------------------------------------------------------------------------------- the task


def test_the_folio_genres_cover_every_play_but_pericles(plays):
    assert set(ft.FOLIO_GENRES) == set(plays) - {"pericles"}
    assert set(ft.FOLIO_GENRES.values()) == set(ft.CLASSES)
    counts = {c: sum(g == c for g in ft.FOLIO_GENRES.values()) for c in ft.CLASSES}
    assert counts == {"comedy": 14, "history": 11, "tragedy": 12}
    held = [ft.FOLIO_GENRES[s] for s in ft.HELDOUT_PLAYS]
    assert sorted(held) == sorted(ft.CLASSES * 3)  # three held-out plays of every genre


def test_the_splits_are_disjoint_by_play(splits):
    train, val, held = (set(splits[s].plays) for s in ft.SPLITS)
    assert held == set(ft.HELDOUT_PLAYS)
    assert not (train | val) & held
    assert train == val and len(train) == 28 and "pericles" not in train
    assert not set(splits["train"].texts) & set(splits["heldout"].texts)


def test_passages_are_labelled_by_their_play_and_come_from_its_split(splits, plays):
    part = {"train": "train_text", "validation": "validation_text", "heldout": "text"}
    for split, data in splits.items():
        assert data.class_names == ft.CLASSES
        for text, label, slug in zip(data.texts, data.labels, data.plays):
            assert ft.CLASSES[label] == ft.FOLIO_GENRES[slug]
            assert text in getattr(plays[slug], part[split]), (split, slug, text[:60])


def test_passages_start_at_a_speech_and_have_the_promised_length(splits):
    for data in splits.values():
        for text in data.texts:
            assert 128 <= len(text) <= 256
            first = text.split("\n", 1)[0]
            assert first.endswith(":") and first == first.upper(), text[:60]
            assert all("\n" in speech for speech in text.split("\n\n"))  # never a name without a line


def test_passages_fit_the_context_of_the_zoo_bpe_model(splits):
    from llmcourse import zoo

    tokenizer = zoo.tokenizer(zoo.card("bpe-transformer-shakespeare"))
    texts = [t for d in splits.values() for t in d.sample(600).texts]
    ids, lengths = ft.encode_passages(tokenizer, texts, 128)
    assert ids.shape == (len(texts), 128) and int(lengths.max()) <= 128
    assert float((lengths == 128).float().mean()) < 0.02  # a passage is rarely cut (~230 chars, ~100 tokens)
    assert 90 < float(lengths.float().mean()) < 110


def test_class_counts_are_balanced_and_fixed(splits):
    assert splits["train"].class_counts() == {"comedy": 2414, "history": 2414, "tragedy": 2414}
    assert splits["validation"].class_counts() == {"comedy": 262, "history": 262, "tragedy": 262}
    assert splits["heldout"].class_counts() == {"comedy": 849, "history": 849, "tragedy": 849}
    everything = ft.genre_passages("validation", balanced=False)
    assert everything.class_counts() == {"comedy": 344, "history": 262, "tragedy": 307}
    assert len(everything) > len(splits["validation"])


def test_genre_passages_are_deterministic_and_seeded(splits):
    again = ft.genre_passages("validation")
    assert again == splits["validation"]
    other = ft.genre_passages("validation", seed=1)
    assert other.texts != again.texts and other.class_counts() == again.class_counts()
    assert list(splits["train"].labels[:6]) == [0, 1, 2, 0, 1, 2]  # classes take turns


def test_samples_are_balanced_nested_and_seeded(splits):
    train = splits["train"]
    small, large = train.sample(16), train.sample(64)
    assert small.class_counts() == {"comedy": 6, "history": 5, "tragedy": 5}
    assert large.texts[:16] == small.texts and set(large.class_counts().values()) <= {21, 22}
    assert train.sample(16, seed=1).texts != small.texts
    assert train.sample(16) == small


def test_play_passages_cuts_at_speech_boundaries():
    text = "A:\nshort one.\n\nB:\n" + "\n".join(f"line number {i} of a long speech" for i in range(12)) + \
           "\n\nC:\nafter the cut, a line that is long enough."
    passages = ft.play_passages(text, 80)
    assert passages[0].startswith("A:\nshort one.\n\nB:\nline number 0")
    assert all(len(p) <= 80 for p in passages)
    assert passages[1:] == ["C:\nafter the cut, a line that is long enough."]  # the rest of B is skipped
    assert ft.play_passages("A:\ntoo short.", 80) == []
    assert ft.play_passages(text, 80, speakers=False)[0].startswith("short one.\n\nline number 0")


# ---------------------------------------------------------------------------------------------------- baselines


def test_majority_baseline():
    assert ft.majority_baseline([0, 1, 1, 2], [1, 1, 0, 2]) == 0.5
    assert ft.majority_baseline([2, 1], [1, 2, 2]) == pytest.approx(1 / 3)  # a tie goes to the smaller label


def _toy(texts, labels):
    return ft.LabelledPassages(tuple(texts), tuple(labels), tuple("toy" for _ in texts))


def test_bag_of_words_learns_telling_words_and_not_noise():
    import random

    rng = random.Random(0)
    filler = "the and of to a my thou".split()
    words = ["merry jest wit", "king crown england", "death blood grave"]

    def sample(n):
        labels = [i % 3 for i in range(n)]
        texts = [" ".join(rng.choices(filler, k=8) + [rng.choice(words[y].split())]) for y in labels]
        return _toy(texts, labels)

    assert ft.bag_of_words_baseline(sample(60), sample(30), min_count=1) == 1.0
    noise = sample(60)
    shuffled = _toy(noise.texts, [rng.randrange(3) for _ in noise.texts])
    assert ft.bag_of_words_baseline(shuffled, sample(300), min_count=1) < 0.6


# ---------------------------------------------------------------------------------------------------- pooling


def test_pool_reads_the_last_real_token_or_the_mean_of_the_real_ones():
    hidden = torch.arange(4.0)[None, :, None] + torch.tensor([0.0, 100.0])[:, None, None]  # h[b, t] = t + 100 b
    lengths = torch.tensor([2, 4])
    assert ft.pool(hidden, lengths, "last").flatten().tolist() == [1.0, 103.0]
    assert ft.pool(hidden, lengths, "mean").flatten().tolist() == [0.5, 101.5]


@pytest.mark.parametrize("pooling", ft.POOLINGS)
def test_padding_does_not_change_the_prediction(pooling):
    clf = ft.SequenceClassifier(tiny_lm(), 3, pooling)
    torch.nn.init.normal_(clf.head.weight)  # a non-zero head, so the logits say something
    clf.eval()
    text = torch.tensor([3, 5, 7, 1, 4])
    alone = clf(text[None], torch.tensor([5]))
    for pad_id, width in ((0, 9), (11, 16)):
        ids = torch.full((2, width), pad_id)
        ids[0, :5] = text
        ids[1, :3] = torch.tensor([2, 2, 2])
        out = clf(ids, torch.tensor([5, 3]))
        torch.testing.assert_close(out[0], alone[0])
    assert clf(text[None, :4], torch.tensor([4])).ne(alone).any()  # a real token does matter


def test_an_untrained_classifier_is_uniform():
    clf = ft.SequenceClassifier(tiny_lm(), 4)
    logits = clf(torch.randint(0, 12, (3, 6)), torch.tensor([6, 2, 1]))
    assert logits.shape == (3, 4) and not logits.any()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2]))
    assert float(loss.detach()) == pytest.approx(math.log(4))


# ---------------------------------------------------------------------------------------------------- set_trainable


def _count(modules):
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize("tied", [False, True])
def test_set_trainable_counts(tied):
    base = tiny_lm(tie_embeddings=tied)
    clf = ft.SequenceClassifier(base, 3)
    d = base.config.n_embd
    assert ft.set_trainable(clf, "head") == d * 3 + 3
    assert {n for n, p in clf.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    assert ft.set_trainable(clf, "last_block") == d * 3 + 3 + _count([base.norm_f, base.blocks[-1]])
    assert not any(p.requires_grad for p in base.blocks[0].parameters())
    full = ft.set_trainable(clf, "full")
    assert full == d * 3 + 3 + _count([base.embed, base.blocks, base.norm_f])
    lm_head_trained = base.head.weight.requires_grad
    assert lm_head_trained == tied  # the unused LM head is frozen, unless it is the embedding matrix
    everything = sum(p.numel() for p in base.parameters())  # a tied matrix once
    assert full == d * 3 + 3 + everything - (0 if tied else base.head.weight.numel())
    assert sum(p.numel() for p in clf.parameters() if p.requires_grad) == full


# ---------------------------------------------------------------------------------------------------- training


def _easy_task(n, seed):
    """Class 0 sequences use tokens 1-5, class 1 tokens 6-10; lengths 3-8, right-padded with 0."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    ids = torch.zeros(n, 8, dtype=torch.long)
    lengths = torch.randint(3, 9, (n,), generator=g)
    for i in range(n):
        ids[i, : lengths[i]] = torch.randint(1, 6, (int(lengths[i]),), generator=g) + 5 * labels[i]
    return ids, lengths, labels


@pytest.mark.parametrize("pooling", ft.POOLINGS)
def test_training_learns_an_easy_task(pooling):
    clf = ft.SequenceClassifier(tiny_lm(), 2, pooling)
    ft.set_trainable(clf, "full")
    ids, lengths, labels = _easy_task(64, 0)
    test = _easy_task(200, 1)
    assert ft.accuracy(clf, *test) == 0.5  # a zero head says class 0 for everything
    history = ft.train_classifier(clf, ids, lengths, labels, steps=40, batch_size=16, lr=3e-3, seed=0,
                                  show_progress=False)
    assert len(history.loss) == 40 and history.loss[0] == pytest.approx(math.log(2))
    assert sum(history.loss[-5:]) / 5 < 0.3
    assert ft.accuracy(clf, *test) > 0.95
    assert not clf.training
    assert ft.predict(clf, test[0], test[1]).shape == (200,)


def test_training_is_seeded_and_changes_only_what_is_trainable():
    ids, lengths, labels = _easy_task(32, 0)
    runs = []
    for _ in range(2):
        base = tiny_lm()
        frozen = {n: p.clone() for n, p in base.named_parameters()}
        clf = ft.SequenceClassifier(base, 2)
        ft.set_trainable(clf, "head")
        runs.append(ft.train_classifier(clf, ids, lengths, labels, steps=5, batch_size=8, lr=1e-2, seed=3,
                                        show_progress=False).loss)
        assert all(torch.equal(p, frozen[n]) for n, p in base.named_parameters())
        assert clf.head.weight.abs().sum() > 0
    assert runs[0] == runs[1]


@pytest.mark.parametrize("pooling", ft.POOLINGS)
def test_a_frozen_base_trains_its_head_on_cached_features_with_the_same_losses(pooling, monkeypatch):
    """Head-only training computes the base's features once; running the base every step (what happens
    when the cache is switched off) gives the same losses and the same head, to float tolerance."""
    ids, lengths, labels = _easy_task(48, 0)
    features = ft.pooled_features(tiny_lm(), ids, lengths, pooling, batch_size=7)  # batches of 7: same result
    clf = ft.SequenceClassifier(tiny_lm(), 2, pooling)
    torch.testing.assert_close(features, ft.pool(clf.base.hidden_states(ids), lengths, pooling).detach())
    runs = []
    for cache in (True, False):
        clf = ft.SequenceClassifier(tiny_lm(), 2, pooling)
        ft.set_trainable(clf, "head")
        calls = []
        real = ft.pooled_features
        monkeypatch.setattr(ft, "pooled_features", lambda *a, **k: calls.append(1) or real(*a, **k))
        if not cache:
            monkeypatch.setattr(ft, "_has_dropout", lambda model: True)  # the condition that turns the cache off
        history = ft.train_classifier(clf, ids, lengths, labels, steps=12, batch_size=8, lr=3e-2, seed=1,
                                      show_progress=False)
        assert len(calls) == (1 if cache else 0)
        runs.append((history.loss, clf.head.weight.detach().clone()))
        monkeypatch.undo()
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-5, abs=1e-6)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-4, atol=1e-5)
    assert runs[0][0][-1] < runs[0][0][0]  # and it learns


def test_dropout_or_a_trainable_base_means_no_cached_features(monkeypatch):
    ids, lengths, labels = _easy_task(16, 0)
    monkeypatch.setattr(ft, "pooled_features", lambda *a, **k: pytest.fail("features cached"))
    for base, which in ((tiny_lm(dropout=0.1), "head"), (tiny_lm(), "last_block")):
        clf = ft.SequenceClassifier(base, 2)
        ft.set_trainable(clf, which)
        ft.train_classifier(clf, ids, lengths, labels, steps=2, batch_size=8, lr=1e-2, seed=0, show_progress=False)


def test_the_zoo_model_takes_a_head():
    from llmcourse import zoo

    base, card = zoo.load("bpe-transformer-shakespeare")
    clf = ft.SequenceClassifier(base, 3, "mean")
    assert ft.set_trainable(clf, "head") == 128 * 3 + 3
    ids, lengths = ft.encode_passages(zoo.tokenizer(card), ["HAMLET:\nTo be, or not to be.", "FOOL:\nNuncle!"])
    assert ids.shape == (2, 128) and lengths.tolist()[1] < lengths.tolist()[0] < 20
    assert clf(ids, lengths).shape == (2, 3)


# ---------------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_the_argument_named(splits):
    clf = ft.SequenceClassifier(tiny_lm(), 2)
    ft.set_trainable(clf, "head")
    ids, lengths, labels = _easy_task(8, 0)
    train = lambda **kw: ft.train_classifier(clf, **{"ids": ids, "lengths": lengths, "labels": labels,  # noqa: E731
                                                     "steps": 1, "batch_size": 4, "lr": 1e-3, "seed": 0,
                                                     "show_progress": False, **kw})
    with pytest.raises(ArgumentError, match=r"labels\[0\] must be an integer >= 0 and <= 1; got 2"):
        train(labels=labels + 2)
    with pytest.raises(ArgumentError, match=r"labels\[3\] .* got -1"):
        train(labels=[0, 1, 0, -1, 0, 1, 0, 1])
    with pytest.raises(ArgumentError, match="one label per sequence"):
        train(labels=labels[:5])
    with pytest.raises(ArgumentError, match=r"lengths must be in \[1, 8\]"):
        train(lengths=lengths * 0)
    with pytest.raises(ArgumentError, match=r"lengths must be in \[1, 8\].*got 9"):
        train(lengths=torch.tensor([3, 9, 3, 3, 3, 3, 3, 3]))
    with pytest.raises(ArgumentError, match=r"lengths must have shape \(8,\)"):
        train(lengths=lengths[:3])
    with pytest.raises(ArgumentError, match="outside the vocabulary"):
        train(ids=ids + 100)
    with pytest.raises(ArgumentError, match="steps must be"):
        train(steps=0)
    with pytest.raises(ArgumentError, match="lr must be"):
        train(lr=-1.0)
    for p in clf.parameters():
        p.requires_grad_(False)
    with pytest.raises(ArgumentError, match="no trainable parameters"):
        train()
    with pytest.raises(ArgumentError, match="which must be one of"):
        ft.set_trainable(clf, "lora")
    with pytest.raises(ArgumentError, match="pooling must be one of"):
        ft.SequenceClassifier(tiny_lm(), 2, "first")
    with pytest.raises(ArgumentError, match="n_classes must be an integer >= 2"):
        ft.SequenceClassifier(tiny_lm(), 1)
    with pytest.raises(ArgumentError, match="base must be"):
        ft.SequenceClassifier(torch.nn.Linear(2, 2), 2)
    with pytest.raises(ArgumentError, match="split must be one of"):
        ft.genre_passages("test")
    with pytest.raises(ArgumentError, match=r"n must be an integer >= 1 and <= 786"):
        splits["validation"].sample(787)
    with pytest.raises(ArgumentError, match="did you mean"):
        ft.encode_passages(_Chars(), "one text")
    with pytest.raises(ArgumentError, match=r"texts\[1\] must be a text with at least one token"):
        ft.encode_passages(_Chars(), ["ab", ""])
    with pytest.raises(ArgumentError, match="eval_labels must be a non-empty"):
        ft.majority_baseline([0], [])
    with pytest.raises(ArgumentError, match="eval must be a LabelledPassages"):
        ft.bag_of_words_baseline(splits["validation"], ["text"])


class _Chars:
    def encode(self, text):
        return [ord(c) % 12 for c in text]


def test_adaptation_texts_are_the_plays_parts_and_the_rest(plays):
    from llmcourse import zoo

    tok = zoo.tokenizer(zoo.card("bpe-transformer-shakespeare"))
    texts = ft.adaptation_texts(tok, "hamlet", rest_tokens=1000)
    assert tok.decode(texts["train"].tolist()) == plays["hamlet"].train_text
    assert tok.decode(texts["play"].tolist()) == plays["hamlet"].validation_text
    assert len(texts["rest"]) == 1000 and "HAMLET:" not in tok.decode(texts["rest"].tolist())
    with pytest.raises(ArgumentError, match="play must be one of"):
        ft.adaptation_texts(tok, "hamlet-ii")
