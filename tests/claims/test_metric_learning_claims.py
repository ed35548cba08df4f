"""Fast variant of the Proxy Anchor claims benchmark: one seed, a few epochs, real digit images."""

from __future__ import annotations

import pytest

from reprolab.claims.metric_learning import markdown_table, run_comparison

CHANCE_RECALL_AT_1 = 100 / 5  # 5 balanced unseen classes


@pytest.mark.learning(seed=0)
def test_proxy_anchor_learns_an_embedding_that_transfers_to_unseen_digits(learning):
    results = run_comparison(losses=("proxy_anchor",), seeds=(learning.seed,), epochs=3)
    curve = results["proxy_anchor"][0]
    assert len(curve) == 4  # before training, then after each epoch
    learning.at_least("R@1 after 3 epochs (chance 20)", curve[-1], 2 * CHANCE_RECALL_AT_1)
    learning.at_least("R@1 gain over untrained", curve[-1] - curve[0], 10)  # training does it
    table = markdown_table(results)
    assert "| proxy_anchor |" in table and "ep 3" in table
