"""Length-grouped batches, token-budget batches and dynamic padding."""

from __future__ import annotations

import numpy as np

from tasks.batching import make_batches, pad_batch, sorted_batches, token_batches


def test_every_index_appears_once_per_epoch():
    lengths = np.random.default_rng(0).integers(5, 200, size=103)
    for grouped in (True, False):
        batches = make_batches(lengths, 8, seed=3, group_by_length=grouped)
        assert sorted(np.concatenate(batches).tolist()) == list(range(103))
        assert all(len(batch) <= 8 for batch in batches)


def test_grouping_by_length_cuts_padding():
    lengths = np.random.default_rng(0).integers(5, 256, size=800)

    def padded_tokens(batches):
        return sum(len(batch) * lengths[batch].max() for batch in batches)

    grouped = padded_tokens(make_batches(lengths, 16, seed=0, group_by_length=True))
    shuffled = padded_tokens(make_batches(lengths, 16, seed=0, group_by_length=False))
    assert grouped < 0.75 * shuffled


def test_the_order_depends_only_on_the_seed():
    lengths = np.arange(50)
    first = make_batches(lengths, 4, seed=1, group_by_length=True)
    again = make_batches(lengths, 4, seed=1, group_by_length=True)
    other = make_batches(lengths, 4, seed=2, group_by_length=True)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_token_batches_take_every_text_once_within_a_budget_of_batch_size_times_the_mean_length():
    lengths = np.random.default_rng(0).integers(5, 256, size=800)
    batches = token_batches(lengths, 16, seed=0)
    budget = 16 * round(lengths.mean())
    assert sorted(np.concatenate(batches).tolist()) == list(range(800))
    assert all(len(batch) * lengths[batch].max() <= budget for batch in batches)
    sizes = {len(batch) for batch in batches}
    assert min(sizes) < 16 < max(sizes)  # a few long texts or many short ones
    assert 50 <= len(batches) <= 60  # about 800 / 16 steps: an epoch keeps its length


def test_a_text_longer_than_the_budget_makes_a_batch_of_its_own():
    lengths = np.array([500, 10, 10, 10])
    batches = token_batches(lengths, 2, seed=0)
    assert [0] in [batch.tolist() for batch in batches]
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3]


def test_token_batches_depend_only_on_the_seed():
    lengths = np.random.default_rng(1).integers(5, 100, size=60)
    first, again, other = (token_batches(lengths, 4, seed) for seed in (1, 1, 2))
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_inference_batches_go_longest_first():
    batches = sorted_batches(np.array([3, 9, 1, 7]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [0, 2]]


def test_padding_is_to_the_longest_in_the_batch():
    batch = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
