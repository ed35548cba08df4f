"""The per-sample predictions tables (reprolab.predictions) and their Parquet round trip."""

import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from reprolab import predictions


def test_classification_keeps_the_top_k_classes_and_their_probabilities():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    table = predictions.classification(["a", "b"], logits, torch.tensor([1, 2]), ["x", "y", "z"], k=2).table
    assert table["prediction"].tolist() == [1, 0] and table["correct"].tolist() == [True, False]
    assert table["topk"].tolist() == [[1, 2], [0, 1]]
    e = math.exp
    assert table["topk_scores"][0] == pytest.approx([e(2) / (1 + e(2) + e(1)), e(1) / (1 + e(2) + e(1))])
    assert table["confidence"][1] == pytest.approx(e(3) / (e(3) + 2))


def test_retrieval_of_a_split_searching_itself_leaves_the_query_out():
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    samples = predictions.retrieval(["a", "b", "c", "d"], embeddings, k=2,
                                    query_labels=torch.tensor([0, 0, 1, 0]), classes=["cat", "dog"])
    table = samples.table
    assert table["retrieved"].tolist() == [["b", "d"], ["a", "d"], ["d", "b"], ["c", "b"]]
    assert table["retrieved_labels"].tolist() == [[0, 0], [0, 0], [0, 0], [1, 0]]
    assert table["correct"].tolist() == [True, True, False, False]
    cos_ab = 0.9 / math.hypot(0.9, 0.1)
    assert table["distances"][0][0] == pytest.approx(1 - cos_ab)
    assert samples.meta == {"classes": ["cat", "dog"], "kind": "retrieval"}


def test_retrieval_of_queries_in_a_gallery_with_label_distances():
    query = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    gallery = torch.tensor([[1.0, 0.0], [4.0, 4.0], [0.0, 3.0]])
    label_distances = torch.tensor([[0.5, 9.0, 2.0], [8.0, 0.25, 7.0]])
    table = predictions.retrieval(["q1", "q2"], query, ["g1", "g2", "g3"], gallery, metric="euclidean",
                                  k=2, label_distances=label_distances).table
    assert table["retrieved"].tolist() == [["g1", "g3"], ["g2", "g3"]]
    assert table["distances"][0] == pytest.approx([1.0, 3.0])
    assert table["distances"][1] == pytest.approx([math.sqrt(2), math.sqrt(29)])
    assert table["label_distances"].tolist() == [[0.5, 2.0], [0.25, 7.0]]
    assert "correct" not in table  # continuous labels: no right or wrong


def test_write_and_read_round_trip_and_reject_other_files(tmp_path):
    samples = predictions.classification(["a"], torch.tensor([[0.0, 1.0]]), torch.tensor([1]), ["x", "y"])
    samples.meta.update(dataset="toy", split="validation", fingerprint="sha256:0")
    path = predictions.write(tmp_path / "run" / predictions.PREDICTIONS_FILE, samples)
    back = predictions.read(path)
    assert back.kind == "classification" and back.meta["split"] == "validation"
    pd.testing.assert_frame_equal(back.table, samples.table)
    assert [p.name for p in path.parent.iterdir()] == [predictions.PREDICTIONS_FILE]  # no temp left
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"id": ["a"], "prediction": [1]}), plain)
    with pytest.raises(ValueError, match="plain.parquet: not a reprolab predictions file"):
        predictions.read(plain)
    broken = predictions.Predictions("retrieval", pd.DataFrame({"id": ["a"]}))
    with pytest.raises(ValueError, match="lack the column.s. distances, retrieved"):
        predictions.read(predictions.write(tmp_path / "broken.parquet", broken))
