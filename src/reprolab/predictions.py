"""Per-sample predictions of an evaluated run: `<run dir>/predictions.parquet`.

`reprolab evaluate` writes one file next to the run's result (atomically), one row per sample of
the evaluation split, in the split's order; `reprolab browse <dataset> --run <id>` shows it beside
the ground truth. Each task kind has one schema (the file's `reprolab` metadata names it):

``classification`` (video-classification): one row per evaluated sample.

    id            str          the sample id of the prepared split
    target        int          ground-truth class index (into `classes`)
    prediction    int          top-1 class index
    confidence    float        softmax probability of the top-1 class (of the view-averaged logits)
    correct       bool         prediction == target
    topk          list[int]    the k most probable class indices, most probable first
    topk_scores   list[float]  their softmax probabilities; k = min(5, number of classes)

``retrieval`` (metric-learning, log-ratio): one row per query.

    id                   str          the query's sample id
    retrieved            list[str]    ids of its k nearest references, nearest first (the query
                                      itself excluded when the split queries itself)
    distances            list[float]  their embedding distances: 1 - cosine similarity
                                      (metric-learning) or Euclidean (log-ratio); k = min(10, ...)

    class labels (metric-learning) add:
    label                int          the query's class index (into `classes`)
    retrieved_labels     list[int]    the retrieved samples' class indices
    correct              bool         retrieved_labels[0] == label (a Recall@1 hit)

    continuous labels (log-ratio) add:
    label_distances      list[float]  label distance between the query and each retrieved
                                      sample, in the metric's units (x eval.label_distance_scale)

``boxes`` (box-regression): one row per image.

    id            str                the image id
    boxes         list[list[float]]  the refined boxes (x1, y1, x2, y2) in letterboxed pixels
    input_boxes   list[list[float]]  the boxes given to the regressor, same order
    scores        list[float]        their scores (a detector's, or a proposal's support)
    classes       list[int]          class indices (into `classes`), or the object each rough box
                                     was drawn around (`classes_are: objects`); absent for proposals

``segmentation`` (wsss-cam, psa-affinity, semantic-segmentation): one row per image.

    id              str          the sample id
    pixels          int          labelled pixels (ground truth not 255)
    correct         int          of them, predicted right
    pixel_accuracy  float        correct / pixels (percent)
    miou            float        mean IoU over the labels in the image's ground truth or prediction
    mask            bytes        optional: the predicted label map as a VOC palette PNG (0
                                 background, 1-20 the classes; reprolab.data.prepare.voc2012.mask_png),
                                 at the ground truth's size; what `browse` shows as `prediction`
                                 (`segmentation(..., masks=...)`; the WSSS tasks do not pass their
                                 masks yet, so their files have no `mask` column today)

The metadata (`reprolab` key of the Parquet schema, JSON) holds `kind`, `dataset`, `split`
(the evaluated split, `+`-joined when a query split searches a gallery split), `fingerprint`,
`classes`, `recipe`, `run_id` and `profile`, so that a reader can check that the file belongs to the split
it is shown with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F

from reprolab import atomic

PREDICTIONS_FILE = "predictions.parquet"
Kind = Literal["classification", "retrieval", "boxes", "segmentation", "instances"]
TOP_CLASSES = 5
TOP_RETRIEVED = 10
_META_KEY = b"reprolab"


class Predictions:
    """A predictions table with its metadata (see the module docstring for the schemas)."""

    def __init__(self, kind: Kind, table: pd.DataFrame, meta: dict[str, Any] | None = None):
        self.kind = kind
        self.table = table
        self.meta = {**(meta or {}), "kind": kind}

    def __len__(self) -> int:
        return len(self.table)


def classification(ids: Sequence[str], logits: torch.Tensor, targets: torch.Tensor,
                   classes: Sequence[str] = (), k: int = TOP_CLASSES) -> Predictions:
    """Top-k classes and their softmax probabilities of each sample's logits."""
    if len(ids) != len(logits):
        raise ValueError(f"{len(ids)} sample ids for {len(logits)} predictions")
    scores, top = F.softmax(logits.float(), dim=1).topk(min(k, logits.shape[1]), dim=1)
    targets = targets.long()
    table = pd.DataFrame({
        "id": [str(i) for i in ids],
        "target": targets.tolist(),
        "prediction": top[:, 0].tolist(),
        "confidence": scores[:, 0].tolist(),
        "correct": (top[:, 0] == targets).tolist(),
        "topk": top.tolist(),
        "topk_scores": scores.tolist(),
    })
    return Predictions("classification", table, {"classes": list(classes)})


def retrieval(query_ids: Sequence[str], query: torch.Tensor, reference_ids: Sequence[str] | None = None,
              reference: torch.Tensor | None = None, *, metric: Literal["cosine", "euclidean"] = "cosine",
              k: int = TOP_RETRIEVED, query_labels: torch.Tensor | None = None,
              reference_labels: torch.Tensor | None = None, label_distances: torch.Tensor | None = None,
              classes: Sequence[str] = ()) -> Predictions:
    """The k nearest references of each query (`reference=None`: the queries search each other,
    leaving themselves out), as the task's metric searches them.

    `query_labels`/`reference_labels`: class labels (adds label, retrieved_labels, correct);
    `label_distances` (num_query, num_reference): continuous labels (adds label_distances)."""
    from reprolab.metrics.retrieval import nearest_neighbours

    self_search = reference is None
    reference_ids = list(query_ids) if self_search else list(reference_ids or [])
    reference = query if self_search else reference
    if len(query_ids) != len(query) or len(reference_ids) != len(reference):
        raise ValueError(f"{len(query_ids)} query ids for {len(query)} embeddings, "
                         f"{len(reference_ids)} reference ids for {len(reference)}")
    k = min(k, len(reference) - int(self_search))
    found = nearest_neighbours(query, None if self_search else reference, k=k, metric=metric)
    distances = _distances(query.float(), reference.float(), found, metric)
    table = pd.DataFrame({
        "id": [str(i) for i in query_ids],
        "retrieved": [[reference_ids[j] for j in row] for row in found.tolist()],
        "distances": distances.tolist(),
    })
    if query_labels is not None:
        labels = torch.as_tensor(query_labels).long()
        retrieved_labels = torch.as_tensor(query_labels if reference_labels is None else reference_labels).long()[found]
        table["label"] = labels.tolist()
        table["retrieved_labels"] = retrieved_labels.tolist()
        table["correct"] = (retrieved_labels[:, 0] == labels).tolist()
    if label_distances is not None:
        table["label_distances"] = torch.as_tensor(label_distances, dtype=torch.float64).gather(1, found).tolist()
    return Predictions("retrieval", table, {"classes": list(classes)})


def _distances(query: torch.Tensor, reference: torch.Tensor, found: torch.Tensor, metric: str,
               chunk: int = 4096) -> torch.Tensor:
    """Distance of each query to its found references (in query chunks: a (Q, k, D) gather of
    60k SOP queries would take GBs)."""
    if metric == "cosine":
        query, reference = F.normalize(query, dim=1), F.normalize(reference, dim=1)
    parts = []
    for start in range(0, len(query), chunk):
        q, neighbours = query[start : start + chunk, None, :], reference[found[start : start + chunk]]
        parts.append(1.0 - (q * neighbours).sum(-1) if metric == "cosine" else (q - neighbours).norm(dim=-1))
    return torch.cat(parts) if parts else torch.empty(0, found.shape[1])


def boxes(ids: Sequence[str], refined: torch.Tensor, inputs: torch.Tensor, scores: torch.Tensor,
          valid: torch.Tensor, classes: torch.Tensor | None = None, *, classes_are: str = "classes",
          class_names: Sequence[str] = ()) -> Predictions:
    """Per-image boxes before and after refinement; rows (B, M, ...) padded, `valid` (B, M)."""
    if len(ids) != len(refined):
        raise ValueError(f"{len(ids)} sample ids for {len(refined)} predictions")
    table = {"id": [str(i) for i in ids],
             "boxes": [r[v].tolist() for r, v in zip(refined, valid, strict=True)],
             "input_boxes": [r[v].tolist() for r, v in zip(inputs, valid, strict=True)],
             "scores": [r[v].tolist() for r, v in zip(scores, valid, strict=True)]}
    if classes is not None:
        table["classes"] = [r[v].tolist() for r, v in zip(classes, valid, strict=True)]
    return Predictions("boxes", pd.DataFrame(table), {"classes": list(class_names), "classes_are": classes_are})


def segmentation(ids: Sequence[str], confusions: torch.Tensor, labels: Sequence[str] = (),
                 masks: Sequence[Any] | None = None) -> Predictions:
    """Per-image scores from each image's flattened [L * L] confusion matrix; `masks` (one [H, W]
    label map per image, tensor or array, or its PNG bytes) adds the `mask` column."""
    from reprolab.metrics.segmentation import iou_per_class

    if len(ids) != len(confusions):
        raise ValueError(f"{len(ids)} sample ids for {len(confusions)} predictions")
    if masks is not None and len(masks) != len(ids):
        raise ValueError(f"{len(ids)} sample ids for {len(masks)} predicted masks")
    size = int(round(confusions.shape[1] ** 0.5))
    rows = []
    for confusion in confusions.view(-1, size, size).double():
        iou = iou_per_class(confusion)
        seen = ~torch.isnan(iou)
        pixels, correct = int(confusion.sum()), int(confusion.diagonal().sum())
        rows.append((pixels, correct, 100.0 * correct / max(1, pixels),
                     100.0 * float(iou[seen].mean()) if bool(seen.any()) else 0.0))
    table = pd.DataFrame(rows, columns=["pixels", "correct", "pixel_accuracy", "miou"])
    table.insert(0, "id", [str(i) for i in ids])
    if masks is not None:
        table["mask"] = [label_png(mask) for mask in masks]
    return Predictions("segmentation", table, {"classes": list(labels)})


def label_png(mask: Any) -> bytes:
    """A label map as a VOC palette PNG (compact: about 1-3 kB for a VOC image)."""
    import numpy as np

    from reprolab.data.prepare.voc2012 import mask_png

    if isinstance(mask, bytes | bytearray):
        return bytes(mask)
    array = mask.cpu().numpy() if torch.is_tensor(mask) else np.asarray(mask)
    if array.ndim != 2 or array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise ValueError(f"a predicted mask must be a [H, W] label map of 0..255, got shape "
                         f"{array.shape}, values {array.min(initial=0)}..{array.max(initial=0)}")
    return mask_png(array.astype("uint8"))


def write(path: Path, predictions: Predictions) -> Path:
    """Write the table and its metadata to `path` as Parquet, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(predictions.table, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), _META_KEY: json.dumps(predictions.meta).encode()}
    with atomic.atomic_path(Path(path)) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
    return Path(path)


def read(path: Path) -> Predictions:
    """A predictions file written by `write`; ValueError naming the file if it is not one."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path}: not a reprolab predictions file (no `reprolab` metadata); "
                         "evaluate the run again (`reprolab evaluate <run dir>`)")
    meta = json.loads(raw)
    kind = meta.get("kind")
    required = {"classification": {"id", "target", "prediction", "confidence", "correct", "topk", "topk_scores"},
                "retrieval": {"id", "retrieved", "distances"},
                "boxes": {"id", "boxes", "input_boxes", "scores"},
                "segmentation": {"id", "pixels", "correct", "pixel_accuracy", "miou"},
                "instances": {"id", "instances", "ground_truth_instances"}}.get(kind)
    if required is None:
        raise ValueError(f"{path}: unknown predictions kind {kind!r}; expected classification, retrieval, "
                         "boxes, segmentation or instances")
    missing = required - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: {kind} predictions lack the column(s) {', '.join(sorted(missing))}")
    return Predictions(kind, table.to_pandas(), meta)
