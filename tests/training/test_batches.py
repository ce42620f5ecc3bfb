import numpy as np
import pytest

from training.batches import BatchSampler


def test_an_epoch_visits_every_image_once_across_processes():
    seen = []
    for rank in range(2):
        sampler = BatchSampler(40, 5, seed=1, stream=0, rank=rank, world=2)
        for step in range(sampler.steps_per_epoch):
            seen.extend(sampler.indices(step))
    assert sorted(seen) == list(range(40))


def test_batches_depend_on_the_step_alone():
    a = BatchSampler(100, 8, seed=3, stream=1)
    b = BatchSampler(100, 8, seed=3, stream=1)
    later = [a.indices(s) for s in range(30)]
    assert np.array_equal(b.indices(29), later[29])  # b jumped straight to step 29
    assert not np.array_equal(a.indices(0), a.indices(12))  # next epoch: a new permutation


def test_a_split_smaller_than_a_batch_is_refused():
    with pytest.raises(ValueError, match="cannot fill"):
        BatchSampler(10, 8, seed=0, stream=0, world=2)
