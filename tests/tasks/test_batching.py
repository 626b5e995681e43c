"""Length-grouped batches and dynamic padding."""

from __future__ import annotations

import numpy as np

from tasks.batching import make_batches, pad_batch, sorted_batches


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


def test_inference_batches_go_longest_first():
    batches = sorted_batches(np.array([3, 9, 1, 7]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [0, 2]]


def test_padding_is_to_the_longest_in_the_batch():
    batch = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
