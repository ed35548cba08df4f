from reprolab.engine.sampling import EpochSampler


def batches(sampler, size):
    items = [index for index, _ in sampler]
    return [items[i : i + size] for i in range(0, len(items), size)]


def test_ranks_split_each_global_batch_exactly():
    one = EpochSampler(50, shuffle=True, seed=3, global_batch_size=8, drop_last=True)
    ranks = [EpochSampler(50, shuffle=True, seed=3, rank=r, world_size=2, global_batch_size=8, drop_last=True)
             for r in range(2)]
    for sampler in (one, *ranks):
        sampler.set_epoch(4)
    single = batches(one, 8)
    split = [batches(s, 4) for s in ranks]
    assert len(single) == 6 and all(len(b) == 4 for part in split for b in part)
    for i, batch in enumerate(single):
        assert sorted(batch) == sorted(split[0][i] + split[1][i])


def test_epochs_differ_and_repeat_and_resume_skips_batches():
    sampler = EpochSampler(20, shuffle=True, seed=0, global_batch_size=4, drop_last=True)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    sampler.set_epoch(0, start_batch=2)
    assert list(sampler) == first[8:] and len(sampler) == 12


def test_sample_seeds_depend_on_epoch_and_index_not_rank():
    a = dict(EpochSampler(10, shuffle=False, global_batch_size=2))
    b = dict(EpochSampler(10, shuffle=False, rank=1, world_size=2, global_batch_size=2))
    assert all(a[i] == b[i] for i in b)
    c = EpochSampler(10, shuffle=False, global_batch_size=2)
    c.set_epoch(1)
    assert dict(c)[0] != a[0]
