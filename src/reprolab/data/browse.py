"""Look at a prepared split (and a run's predictions) in the FiftyOne App.

FiftyOne is a viewer here, imported only in this module. FiftyOne needs media files, so each
sample is shown as one file written next to the prepared data (`<profile tree>/.browse/<split>/`):
for a video its middle frame (the frame count and the sample id are fields), for an image the
image itself. Ground truth is a `Classification`; with `--run` (a run directory, or a run id
found in the results store or under runs/), the run's predictions file
(`<run dir>/predictions.parquet`, columns `id`, `prediction` (class index), optional
`confidence`) becomes a second `Classification` field, `prediction`.
"""

from __future__ import annotations

import os
from pathlib import Path

from reprolab import paths
from reprolab.data.layout import DatasetLayout, Profile
from reprolab.data.reader import open_split

PREDICTIONS_FILE = "predictions.parquet"


def run_dir_of(run: str, root: Path | None = None) -> Path:
    """A run's directory from a path, or from a run id (results store, then runs/*/<id>/)."""
    if Path(run).is_dir():
        return Path(run)
    from reprolab.results import ResultsStore

    for result in ResultsStore(paths.results_dir(root)).runs():
        if result.run_id == run and result.log_path:
            return paths.in_checkout(result.log_path, root).parent
    matches = sorted(paths.runs_dir(root).glob(f"*/{run}"))
    if matches:
        return matches[0]
    from reprolab.errors import MissingDataError

    raise MissingDataError(f"run {run!r}: no such run directory, and no result or folder "
                           f"runs/*/{run} (pass the run directory itself)")


def predictions_path(run: str, root: Path | None = None) -> Path:
    return run_dir_of(run, root) / PREDICTIONS_FILE


def _read_predictions(run_id: str, root: Path | None) -> dict[str, tuple[int, float | None]]:
    import pyarrow.parquet as pq

    from reprolab.errors import MissingDataError

    path = predictions_path(run_id, root)
    if not path.is_file():
        raise MissingDataError(f"run {run_id}: no predictions file {path} (expected columns id, "
                               "prediction, optional confidence)")
    table = pq.read_table(path)
    missing = {"id", "prediction"} - set(table.column_names)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    confidence = (table.column("confidence").to_pylist() if "confidence" in table.column_names
                  else [None] * table.num_rows)
    return {str(i): (int(p), c) for i, p, c in zip(table.column("id").to_pylist(),
                                                   table.column("prediction").to_pylist(),
                                                   confidence, strict=True)}


def build_fiftyone_dataset(dataset_id: str, split: str, profile: Profile = "full", *,
                           run: str | None = None, root: Path | None = None,
                           name: str | None = None, limit: int | None = None):
    """Create (or replace) a FiftyOne dataset holding the split's samples; returns it."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    import fiftyone as fo

    root = Path(root) if root is not None else None
    prepared = open_split(dataset_id, split, profile, root=root)
    predictions = _read_predictions(run, root) if run else {}
    media_dir = DatasetLayout(dataset_id, profile, root).base / ".browse" / split
    media_dir.mkdir(parents=True, exist_ok=True)
    classes = prepared.classes
    name = name or f"reprolab-{dataset_id}-{profile}-{split}" + (f"-{run}" if run else "")
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.default_classes = classes
    dataset.info = {"reprolab_dataset": dataset_id, "profile": profile, "split": split,
                    "fingerprint": prepared.fingerprint, "run": run}
    samples = []
    count = len(prepared) if limit is None else min(limit, len(prepared))
    for index in range(count):
        item = prepared[index]
        media = media_dir / f"{item.id}.jpg"
        if not media.is_file():
            media.write_bytes(item.frames[len(item.frames) // 2])
        sample = fo.Sample(filepath=str(media.resolve()), tags=[split], sample_id=item.id,
                           num_frames=item.num_frames)
        if item.label >= 0 and classes:
            sample["ground_truth"] = fo.Classification(label=classes[item.label])
        if item.id in predictions:
            predicted, confidence = predictions[item.id]
            sample["prediction"] = fo.Classification(label=classes[predicted], confidence=confidence)
        samples.append(sample)
    dataset.add_samples(samples, progress=False)
    return dataset


def browse(dataset_id: str, split: str, profile: Profile = "full", *, run: str | None = None,
           port: int = 5151, address: str = "127.0.0.1", wait: bool = True):
    """Build the dataset and launch the App on localhost (blocks until the App is closed)."""
    import fiftyone as fo

    dataset = build_fiftyone_dataset(dataset_id, split, profile, run=run)
    session = fo.launch_app(dataset, port=port, address=address, remote=True)
    print(f"FiftyOne App: http://{address}:{port} ({len(dataset)} samples of {dataset_id}/{split}); "
          "Ctrl-C to stop")
    if wait:
        session.wait()
    return session
