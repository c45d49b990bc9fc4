"""Checkers for notebook 05 (pretraining)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_number


@exercise(
    "05.1",
    "MinHash with 128 numbers is cut into 21 bands of 6 rows. What is the probability that a pair of "
    "documents with Jaccard similarity 0.8 becomes a candidate pair?",
    hints=[
        "A band matches when all 6 of its rows agree; each row agrees with probability 0.8.",
        "P(one band matches) = 0.8**6. The pair is a candidate unless all 21 bands miss: "
        "1 - (1 - 0.8**6)**21.",
    ],
)
def _lsh_probability(answer):
    s, rows, bands = 0.8, 6, 21
    expect_number(
        answer,
        1 - (1 - s**rows) ** bands,
        rel_tol=1e-3,
        what="Your probability",
        mistakes={
            s**rows: "that is the chance that one band matches; the pair needs only one of 21 bands.",
            (1 - s**rows) ** bands: "that is the chance that every band misses: the pair is *not* a candidate.",
            1 - (1 - s**bands) ** rows: "rows and bands are swapped: a band is 6 rows, and there are 21 bands.",
        },
    )
    return ("About 0.998: near copies at the threshold are almost never missed, while a pair at 0.5 "
            "becomes a candidate with probability 0.28, and at 0.3 with 0.015.")


@exercise(
    "05.2",
    "Write top_p_probs(probs, p): keep the smallest set of most likely tokens whose probabilities sum to "
    "at least p, zero the rest, and renormalise. probs is a 1-D tensor that sums to 1.",
    hints=[
        "Sort the probabilities in descending order and take the cumulative sum.",
        "A token is kept if the tokens before it (in sorted order) sum to less than p: "
        "keep = (cumsum - sorted) < p. Scatter the mask back to the original order, zero the rest, "
        "divide by the sum.",
    ],
)
def _top_p(fn):
    import torch

    from llmcourse.generation import filter_top_p

    cases = []
    for probs, p in [([0.5, 0.3, 0.2], 0.6), ([0.1, 0.6, 0.3], 0.5), ([0.4, 0.3, 0.2, 0.1], 0.5),
                     ([0.05, 0.15, 0.7, 0.1], 0.9), ([0.2, 0.3, 0.5], 1.0)]:
        t = torch.tensor(probs)
        want = torch.softmax(filter_top_p(t.log(), p), dim=-1)
        cases.append(((t.clone(), p), want))

    def close(got, want):
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"top_p_probs should return a tensor, got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"top_p_probs returned shape {tuple(got.shape)}, expected {tuple(want.shape)}.")
        if abs(float(got.sum()) - 1) > 1e-5:
            raise Incorrect(f"The result sums to {float(got.sum()):.4f}: renormalise the kept probabilities.")
        if not torch.allclose(got, want, atol=1e-6):
            if int((got > 0).sum()) > int((want > 0).sum()):
                raise Incorrect("You keep too many tokens: stop at the first token where the sum reaches p "
                                "(that token is kept, the ones after it are not).")
            raise Incorrect("You keep too few tokens: the token that makes the sum reach p is kept too.")
        return True

    check_function(fn, cases, name="top_p_probs", close=close)
    return "That is nucleus sampling: the candidate set grows when the model is unsure and shrinks when it is sure."


@exercise(
    "05.3",
    "A run of 2,000 steps warms up linearly over its first 5% and then decays with a cosine from the peak "
    "learning rate 1e-3 to a floor of 1e-4. What is the learning rate at step 1,050?",
    hints=[
        "The warm-up ends at step 100. Step 1,050 is how far into the 1,900 steps of decay?",
        "Exactly halfway, where the cosine factor (1 + cos(π/2)) / 2 is 0.5: floor + (peak - floor) · 0.5.",
    ],
)
def _lr(answer):
    expect_number(
        answer,
        1e-4 + (1e-3 - 1e-4) * 0.5,
        rel_tol=1e-3,
        what="Your learning rate",
        mistakes={
            5e-4: "that is half the peak; the cosine decays to the floor 1e-4, not to 0, so halfway is 5.5e-4.",
            1e-3: "that is the peak; after the warm-up the cosine has already brought it down.",
        },
    )
    return "5.5e-4: halfway through the decay, halfway between peak and floor."


@exercise(
    "05.4",
    "A GPT-2-small-sized model (12 layers, 12 key/value heads of 64 numbers each) keeps a KV cache in "
    "float32. How many bytes does the cache hold after 1,024 tokens?",
    hints=[
        "Per token and layer the cache holds one key and one value vector for every key/value head.",
        "2 (key and value) × 12 layers × 12 heads × 64 numbers × 1,024 tokens × 4 bytes.",
    ],
)
def _kv_bytes(answer):
    want = 2 * 12 * 12 * 64 * 1024 * 4
    expect_number(
        answer,
        want,
        rel_tol=0,
        what="Your count",
        mistakes={
            want // 2: "that counts keys or values, not both.",
            want // 4: "that is the number of floats; each float32 takes 4 bytes.",
            want // 12: "that is one layer; every layer keeps its own keys and values.",
        },
    )
    return "75,497,472 bytes (72 MiB) per sequence; grouped-query attention with 4 KV heads would need a third."
