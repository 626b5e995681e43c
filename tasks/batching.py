"""Tokenising once, length-grouped batches and dynamic padding: each batch is only as long as its longest text."""

from __future__ import annotations

import numpy as np
import torch

from tasks.errors import DataError


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, truncated at `max_length` (special tokens included), not padded."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [list(ids) for ids in encoded["input_ids"]]


def make_batches(lengths: np.ndarray, batch_size: int, seed: int, group_by_length: bool) -> list[np.ndarray]:
    """Shuffled index batches for one epoch, seeded so an epoch's order is the same on every run and resume.

    With `group_by_length`, indices are sorted by length inside windows of 50 batches, so each batch holds texts of
    similar length (little padding) while the epoch stays shuffled.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if group_by_length:
        window = batch_size * 50
        order = np.concatenate([
            chunk[np.argsort(-lengths[chunk], kind="stable")]
            for chunk in np.array_split(order, max(1, int(np.ceil(len(order) / window))))
        ]) if len(order) else order
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def token_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Shuffled index batches for one epoch of about the same number of padded tokens each: a budget of `batch_size`
    x the mean length, filled in length order inside windows of 50 x `batch_size` shuffled texts (as
    `make_batches` groups them), so many short texts or a few long ones make a step and an epoch keeps about
    len / `batch_size` steps. Seeded as `make_batches` is."""
    if not len(lengths):
        return []
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    budget = batch_size * max(1, round(float(lengths.mean())))
    batches: list[np.ndarray] = []
    for chunk in np.array_split(order, max(1, int(np.ceil(len(order) / (batch_size * 50))))):
        current: list[int] = []
        for index in chunk[np.argsort(-lengths[chunk], kind="stable")]:
            if current and (len(current) + 1) * lengths[current[0]] > budget:  # the first is the longest
                batches.append(np.array(current))
                current = []
            current.append(int(index))
        batches.append(np.array(current))
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches for inference, longest first, so padding is minimal."""
    order = np.argsort(-lengths, kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def pad_batch(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask`, right-padded to the longest sequence in the batch."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention}


def pad_id_of(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else its end-of-text token, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


class SeededTextBatches:
    """Texts tokenised once and drawn in a seeded order per epoch: `picked(epoch, step)` holds the same texts on every
    run and every resume (a batch that runs past the end of the order wraps round to its start).

    Subclasses turn the picked token ids into a batch: masked (target masked-LM) or padded (domain adversary).
    """

    seed_offset = 0  # two objectives on the same texts and seed draw different orders

    def __init__(self, tokenizer, texts: tuple[str, ...], max_length: int, batch_size: int, seed: int, what: str):
        self.sequences = [ids for ids in tokenize(tokenizer, list(texts), max_length) if len(ids) > 2]
        if not self.sequences:
            raise DataError(f"{what}: none of the {len(texts)} unlabelled target texts has a word the tokenizer "
                            "knows; give target texts with words in them or drop the strategy")
        self.batch_size, self.seed = batch_size, seed
        self._epoch: int | None = None

    def epoch_seed(self, epoch: int) -> int:
        return self.seed * 1000 + self.seed_offset + epoch

    def picked(self, epoch: int, step: int) -> list[list[int]]:
        if self._epoch != epoch:
            self._order = np.random.default_rng(self.epoch_seed(epoch)).permutation(len(self.sequences))
            self._epoch = epoch
        start = (step * self.batch_size) % len(self._order)
        return [self.sequences[i] for i in np.resize(self._order[start:], self.batch_size)]
