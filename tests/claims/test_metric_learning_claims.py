"""Fast variant of the Proxy Anchor claims benchmark: one seed, a few epochs, real digit images."""

from __future__ import annotations

from reprolab.claims.metric_learning import markdown_table, run_comparison

CHANCE_RECALL_AT_1 = 100 / 5  # 5 balanced unseen classes


def test_proxy_anchor_learns_an_embedding_that_transfers_to_unseen_digits():
    results = run_comparison(losses=("proxy_anchor",), seeds=(0,), epochs=3)
    curve = results["proxy_anchor"][0]
    assert len(curve) == 4  # before training, then after each epoch
    assert curve[-1] > 2 * CHANCE_RECALL_AT_1
    assert curve[-1] > curve[0] + 10  # training, not the random network, does it
    table = markdown_table(results)
    assert "| proxy_anchor |" in table and "ep 3" in table
