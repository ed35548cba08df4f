"""The WSSS claims benchmark (reprolab.claims.wsss) resolves every chain it runs; its baseline
"segmentation on CAM labels" is the published seg-deeplab-val chain with three overrides: the cams
stage writes the CAMs' own labels and the segmentation stage trains on them. (The chains
themselves run in `nox -s claims-wsss`, minutes per seed; the PSA and IRNet chains also run in
tests/tasks/test_psa_chain.py and test_irnet_chain.py.)"""

from __future__ import annotations

from reprolab.claims.wsss import CAM_LABELS, CHAINS, CLAIMS
from reprolab.pipeline.resolve import stage_specs
from reprolab.registry import load_registry


def test_every_chain_resolves_and_the_cam_label_baseline_trains_on_cam_labels():
    reg = load_registry()
    for _group, recipe_id, overrides, _rows in CHAINS:
        recipe = reg.recipe(recipe_id)
        specs = stage_specs(recipe, reg.benchmarks[recipe.benchmark], "tiny", list(overrides), 0)
        if overrides == CAM_LABELS:
            assert "/stages/cams/split/" in specs["seg"]["data"]["train_split"]
            assert specs["cams"]["stage"]["options"]["pseudo_labels"] is True
            assert specs["seg"]["data"]["label_key"] == "cam_label"
        elif "seg" in specs:
            assert "/stages/rw-labels/split/" in specs["seg"]["data"]["train_split"]
            assert specs["cams"]["stage"]["options"]["pseudo_labels"] is False
    rows = {label for *_rest, chain_rows in CHAINS for label, _where in chain_rows}
    assert all(low in rows and high in rows for _claim, low, high in CLAIMS)
