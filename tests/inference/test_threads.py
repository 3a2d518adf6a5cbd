import pytest
import torch

from hubkit.inference.threads import ThreadGovernor


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(governor, cost, batches):
    """Feed ``batches`` batch cycles whose seconds per tile depend on the thread count: ``cost(threads, k)``."""
    used = []
    for k in range(batches):
        used.append(governor.current)
        governor.record(cost(governor.current, k), tiles=1)
    return used


@pytest.mark.parametrize("cost, expected", [
    ({4: 1.0, 1: 2.5}, 4),  # free cores: all of them
    ({4: 4.0, 1: 1.2}, 1),  # busy cores: the barrier stalls, one thread wins
])
def test_the_governor_settles_on_the_faster_setting(cost, expected):
    governor = ThreadGovernor(most=4)
    used = _run(governor, lambda t, k: cost[t], 400)
    assert governor.current == expected == torch.get_num_threads()
    assert used[-100:].count(expected) >= 90  # tries of the other setting are rare once settled


def test_the_governor_follows_the_load_as_it_comes_and_goes():
    governor = ThreadGovernor(most=4)
    busy = range(300, 700)  # other processes take the cores for a while
    used = _run(governor, lambda t, k: (4.0 if t == 4 else 1.2) if k in busy else (1.0 if t == 4 else 2.5), 1000)
    assert used[280:300].count(4) >= 17 and used[600:700].count(1) >= 90 and used[-50:].count(4) >= 45


def test_one_core_means_no_choice_and_restore_puts_the_count_back():
    torch.set_num_threads(3)
    governor = ThreadGovernor(most=1)
    assert _run(governor, lambda t, k: 1.0, 50) == [1] * 50 and governor.switches == 0
    governor.restore()
    assert torch.get_num_threads() == 3
