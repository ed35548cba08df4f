"""Look at a prepared split, and a run's predictions beside its ground truth, in the FiftyOne App.

FiftyOne is a viewer here, imported only in this module; it needs media files, written once next
to the prepared data (`<profile tree>/.browse/<split>-<fingerprint>/`). A video dataset (card `modality: video`)
becomes FiftyOne video samples: each clip's prepared frames encoded as an H.264 MP4 (what the
model reads, at the `fps` it was prepared at, else DEFAULT_FPS), with its video metadata (size,
frame count, rate). An image dataset shows the image itself (a multi-frame sample of a mixed
dataset, its middle frame).

Fields: `sample_id`, `num_frames`, `ground_truth` (a Classification, when the sample has a
class; a Segmentation when it has a label mask, as VOC 2012's splits do: their image labels are
-1, "several"). Masks, CAMs and pseudo labels are written as PNGs beside the media; the dataset's
mask targets are VOC's 21 labels plus 255 "ignore" (reprolab.data.browse_segmentation). With
`--run` (a run directory, or a run id found in the results store or under runs/), the run's
`predictions.parquet` (schemas in reprolab.predictions) adds, per evaluated sample:

- classification: `prediction` (Classification, with its softmax confidence), `correct` (bool),
  `top_k` (Classifications: the k most probable classes and their probabilities);
- retrieval with classes: `prediction` (the class of the nearest retrieved sample), `correct`
  (a Recall@1 hit), `retrieved` (ids, nearest first), `retrieved_distance` (the nearest one's);
- retrieval with continuous labels: `retrieved`, `retrieved_distance`, `label_distance` (the
  nearest one's label distance);
- segmentation (wsss-cam, psa-affinity, semantic-segmentation, deeplab-v2): `miou`,
  `pixel_accuracy` (percent) and `pixels` (labelled pixels) of the image, and `prediction` (a
  Segmentation) when the run stored its predicted masks (the optional `mask` column; a run
  without it is shown with its scores only, said so);
- instances (irnet): `instances`, `ground_truth_instances` (counts per image).

`--stage <name>` with `--run <chain recipe id>` (or a run of one of the chain's stages) shows the
derived split that inference stage wrote (runs/<recipe>/<profile>/stages/<name>/split/; `--split`
picks one when it wrote several): beside `ground_truth`, `cam` (a Heatmap of the CAM of the
image's top class, the one with the highest mean CAM, named in `cam_class`) from a `cam` payload
(`cams`, `irn-cams`) and `pseudo_label` (a Segmentation) from a `pseudo_label` payload
(`rw-labels`, `irn-labels`). Sort on `miou`, or in Python: `dataset.sort_by("miou")`.

Filter in the App on `correct`, or in Python: `dataset.match(F("correct") == False)`.
Without `--profile`, the full data is shown when it is prepared, else the tiny fixture (said so);
with `--run`, the run's own profile and evaluated split.
"""

from __future__ import annotations

import io
import os
import sys
from fractions import Fraction
from pathlib import Path

from reprolab import atomic, paths
from reprolab.data import browse_segmentation
from reprolab.data.layout import PROFILES, DatasetLayout, Profile
from reprolab.data.reader import open_split
from reprolab.errors import MissingDataError, UsageError
from reprolab.predictions import PREDICTIONS_FILE, Predictions, read

DEFAULT_FPS = 12  # Something-Something's native rate; a clip prepared without an `fps` option
PREFERRED_SPLITS = ("validation", "test", "val")


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
    raise MissingDataError(f"run {run!r}: no such run directory, and no result or folder "
                           f"runs/*/{run} (pass the run directory itself)")


def predictions_path(run: str, root: Path | None = None) -> Path:
    return run_dir_of(run, root) / PREDICTIONS_FILE


def run_predictions(run: str, root: Path | None = None) -> Predictions:
    path = predictions_path(run, root)
    if not path.is_file():
        raise MissingDataError(f"run {run}: no predictions file {path}; evaluate the run (`reprolab "
                               f"evaluate {path.parent}`), which writes it")
    try:
        return read(path)
    except ValueError as error:  # not ours, or of an older schema: evaluating again rewrites it
        raise MissingDataError(f"run {run}: {error}") from None


def choose_profile(dataset_id: str, root: Path | None = None) -> tuple[Profile, str | None]:
    """The profile to show when none is given: full when any of its splits is prepared, else tiny
    (with a note saying so); MissingDataError naming the commands when neither is."""
    prepared = {p: DatasetLayout(dataset_id, p, root).prepared_splits() for p in PROFILES}
    if prepared["full"]:
        return "full", None
    if prepared["tiny"]:
        return "tiny", (f"{dataset_id}: no full data is prepared here; showing the tiny profile (the "
                        "project's small generated fixture). Pass --profile tiny to choose it, or "
                        f"prepare the real data: reprolab data fetch {dataset_id} && reprolab data "
                        f"prepare {dataset_id}")
    raise MissingDataError(f"{dataset_id}: nothing is prepared in either profile. Run: reprolab data "
                           f"fetch {dataset_id} --profile tiny && reprolab data prepare {dataset_id} "
                           "--profile tiny (the small fixture), or the same without --profile tiny "
                           "for the real data")


def _default_split(dataset_id: str, profile: Profile, root: Path | None) -> str:
    prepared = DatasetLayout(dataset_id, profile, root).prepared_splits()
    for name in PREFERRED_SPLITS:
        if name in prepared:
            return name
    return prepared[0] if prepared else "validation"  # open_split then says how to prepare it


def _is_video(dataset_id: str, root: Path | None) -> bool:
    from reprolab.registry import load_card

    card_path = DatasetLayout(dataset_id, "full", root).card_path
    return card_path.is_file() and load_card(card_path).modality == "video"


def _even(size: tuple[int, int]) -> tuple[int, int]:
    return size[0] - size[0] % 2, size[1] - size[1] % 2  # yuv420p needs even sizes


def _write_clip(frames: list[bytes], target: Path, size: tuple[int, int], fps: float) -> None:
    """Encode JPEG frames as an H.264 MP4 (yuv420p: what browsers play), atomically."""
    import av
    from PIL import Image

    with atomic.atomic_path(target) as tmp, av.open(str(tmp), "w", format="mp4",
                                                    options={"movflags": "+faststart"}) as out:
        # veryfast: half the time of the default preset (0.3 s for 48 frames of 320x240 here)
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                options={"preset": "veryfast"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            image = Image.open(io.BytesIO(frame)).convert("RGB")
            if image.size != size:  # an odd size loses its last row/column; another size is scaled
                image = image.crop((0, 0, *size)) if _even(image.size) == size else image.resize(size)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _video_sample(fo, item, media_dir: Path, fps: float):
    from PIL import Image

    media = media_dir / f"{item.id}.mp4"
    width, height = _even(Image.open(io.BytesIO(item.frames[0])).size)
    if not media.is_file():
        _write_clip(item.frames, media, (width, height), fps)
    metadata = fo.VideoMetadata(size_bytes=media.stat().st_size, mime_type="video/mp4",
                                frame_width=width, frame_height=height, frame_rate=fps,
                                total_frame_count=len(item.frames), duration=len(item.frames) / fps,
                                encoding_str="avc1")
    return fo.Sample(filepath=str(media.resolve()), metadata=metadata)


def _image_sample(fo, item, media_dir: Path):
    media = media_dir / f"{item.id}.jpg"
    if not media.is_file():
        with atomic.atomic_path(media) as tmp:
            tmp.write_bytes(item.frames[len(item.frames) // 2])
    return fo.Sample(filepath=str(media.resolve()))


def _check_predictions(samples: Predictions, dataset_id: str, split: str, prepared, run: str) -> None:
    meta = samples.meta
    if meta.get("dataset") not in (None, dataset_id):
        raise UsageError(f"run {run} evaluated {meta['dataset']}, not {dataset_id}: browse "
                         f"{meta['dataset']} --run {run}")
    if meta.get("split") == split and meta.get("fingerprint") not in (None, prepared.fingerprint):
        raise MissingDataError(f"run {run}: its predictions are of {dataset_id}/{split} with fingerprint "
                         f"{meta['fingerprint']}, but that split is now {prepared.fingerprint} (prepared "
                         "again?); evaluate the run again")
    unknown = set(samples.table["id"]) - set(prepared.ids)
    if unknown:
        raise UsageError(f"run {run}: {len(unknown)} predicted sample(s) (e.g. {sorted(unknown)[0]!r}) are "
                         f"not in {dataset_id}/{split}; the run evaluated split {meta.get('split')!r}")


def _prediction_fields(fo, samples: Predictions, classes: list[str], masks_dir: Path) -> dict[str, dict]:
    """{sample id: {field: value}} from a predictions table (segmentation masks go to `masks_dir`)."""
    def name(index: int) -> str:
        return classes[index] if 0 <= index < len(classes) else str(index)

    fields: dict[str, dict] = {}
    for row in samples.table.itertuples(index=False):
        if samples.kind == "segmentation":
            fields[row.id] = browse_segmentation.prediction_fields(fo, row, masks_dir)
            continue
        if samples.kind == "instances":
            fields[row.id] = {"instances": int(row.instances),
                              "ground_truth_instances": int(row.ground_truth_instances)}
            continue
        if samples.kind == "classification":
            fields[row.id] = {
                "prediction": fo.Classification(label=name(int(row.prediction)), confidence=float(row.confidence)),
                "correct": bool(row.correct),
                "top_k": fo.Classifications(classifications=[
                    fo.Classification(label=name(int(c)), confidence=float(s))
                    for c, s in zip(row.topk, row.topk_scores, strict=True)]),
            }
            continue
        values = {"retrieved": [str(i) for i in row.retrieved], "retrieved_distance": float(row.distances[0])}
        if "retrieved_labels" in samples.table:
            values.update(prediction=fo.Classification(label=name(int(row.retrieved_labels[0]))),
                          correct=bool(row.correct))
        if "label_distances" in samples.table:
            values["label_distance"] = float(row.label_distances[0])
        fields[row.id] = values
    return fields


def stage_split(run: str, stage: str, profile: Profile | None, split: str | None,
                root: Path | None = None) -> tuple[Profile, str]:
    """(profile, derived split reference) of a chain stage's derived split: `run` is the chain's
    recipe id, or a run (id or directory) of one of its stages (runs/<recipe>/<profile>/stages/)."""
    from reprolab.pipeline.layout import StageLayout

    recipe = run
    profiles = [profile] if profile else ["full", "tiny"]
    if not any((StageLayout(recipe, p, root).base / "stages").is_dir() for p in profiles):
        try:  # a stage's run: runs/<recipe>/<profile>/stages/<s>/run
            run_dir = run_dir_of(run, root).resolve()
        except MissingDataError:
            raise MissingDataError(f"--stage {stage}: {run!r} is no chain that has run (no runs/{run}/"
                                   f"<profile>/stages/) and no run; run the chain first: reprolab "
                                   f"run-stages {run} --profile {profile or 'tiny'}") from None
        parts = run_dir.parts
        if len(parts) < 5 or parts[-3] != "stages":
            raise UsageError(f"--stage {stage}: {run!r} is neither a chain's recipe id with that stage "
                             f"(runs/{run}/<profile>/stages/{stage}/) nor a run of a chain stage")
        recipe, run_profile = parts[-5], parts[-4]
        if profile is not None and run_profile != profile:
            raise UsageError(f"run {run} is a {run_profile} run; drop --profile {profile} or pass "
                             f"--profile {run_profile}")
        profiles = [run_profile]
    for candidate in profiles:
        layout = StageLayout(recipe, candidate, root)
        if not layout.stage_dir(stage).is_dir():
            continue
        written = sorted(p.stem for p in layout.split_dir(stage).glob("*.json"))
        if not written:
            raise MissingDataError(f"{recipe} stage {stage} ({candidate}): no derived split in "
                                   f"{layout.relative(layout.split_dir(stage))}/ (is it an inference stage, and has "
                                   f"it run? `reprolab run-stages {recipe} --profile {candidate}`)")
        name = split or written[0]
        if name not in written:
            raise UsageError(f"{recipe} stage {stage}: no derived split {name!r} (it wrote: {', '.join(written)})")
        return candidate, layout.split_ref(stage, name)
    raise MissingDataError(f"chain {recipe}: stage {stage} has not run in the {' or '.join(profiles)} profile "
                           f"(no runs/{recipe}/<profile>/stages/{stage}/); run it: reprolab run-stages "
                           f"{recipe} --profile {profiles[-1]}")


def build_fiftyone_dataset(dataset_id: str, split: str | None = None, profile: Profile | None = None, *,
                           run: str | None = None, stage: str | None = None, root: Path | None = None,
                           name: str | None = None, limit: int | None = None):
    """Create (or replace) a FiftyOne dataset holding the split's samples (and the run's
    predictions, or with `stage` the chain stage's derived split); returns it. `split`/`profile`
    None: the run's, else as the module says."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    root = Path(root) if root is not None else None
    if stage is not None:
        if run is None:
            raise UsageError(f"--stage {stage} needs --run: the chain's recipe id (or a run of one of its stages)")
        profile, split = stage_split(run, stage, profile, split, root)
    samples = run_predictions(run, root) if run and stage is None else None
    if samples is not None:
        run_profile = samples.meta.get("profile")
        if profile is not None and run_profile not in (None, profile):
            raise UsageError(f"run {run} is a {run_profile} run; drop --profile {profile} or pass "
                             f"--profile {run_profile}")
        profile = profile or run_profile
        split = split or str(samples.meta.get("split", "")).split("+")[0] or None  # query+gallery: queries
    if profile is None:
        profile, note = choose_profile(dataset_id, root)
        if note:
            print(f"reprolab: {note}", file=sys.stderr, flush=True)
    split = split or _default_split(dataset_id, profile, root)
    prepared = open_split(dataset_id, split, profile, root=root)
    if samples is not None:
        _check_predictions(samples, dataset_id, split, prepared, run)
    import fiftyone as fo

    classes = prepared.classes
    video = _is_video(dataset_id, root)
    fps = float((prepared.info.get("options") or {}).get("fps") or DEFAULT_FPS)
    # one folder per preparation: media of an earlier preparation are never shown for this one
    # (a derived split's `split` is its path runs/<recipe>/<profile>/stages/<stage>/split/<name>)
    media_dir = (DatasetLayout(dataset_id, profile, root).base / ".browse" /
                 f"{split.replace('/', '__')}-{prepared.fingerprint.removeprefix('sha256:')[:12]}")
    media_dir.mkdir(parents=True, exist_ok=True)
    run_id = (samples.meta.get("run_id") or Path(run).name) if samples is not None else None
    fields = (_prediction_fields(fo, samples, classes, media_dir / "runs" / run_id)
              if samples is not None else {})
    if samples is not None and samples.kind == "segmentation" and "mask" not in samples.table:
        print(f"reprolab: run {run} stored no predicted masks (its evaluation wrote per-image scores "
              "only): showing miou and pixel_accuracy, no `prediction` mask", file=sys.stderr, flush=True)
    masks = not video and browse_segmentation.has_masks(prepared)
    shown_split = f"{Path(run).name}-{stage}" if stage else split
    name = name or f"reprolab-{dataset_id}-{profile}-{shown_split}" + (f"-{run_id}" if run_id else "")
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.default_classes = classes
    if masks or (samples is not None and samples.kind == "segmentation"):
        dataset.default_mask_targets = browse_segmentation.MASK_TARGETS
    dataset.info = {"reprolab_dataset": dataset_id, "profile": profile, "split": split,
                    "fingerprint": prepared.fingerprint, "run": run, "stage": stage,
                    "predictions": samples.kind if samples is not None else None}
    count = len(prepared) if limit is None else min(limit, len(prepared))
    batch = []
    for index in range(count):
        item = prepared[index]
        sample = _video_sample(fo, item, media_dir, fps) if video else _image_sample(fo, item, media_dir)
        sample.tags = [split]
        sample["sample_id"] = item.id
        sample["num_frames"] = item.num_frames
        if item.label >= 0 and classes:
            sample["ground_truth"] = fo.Classification(label=classes[item.label])
        if masks:  # a mask, CAM or pseudo label per image (replaces no label: VOC's are -1)
            for key, value in browse_segmentation.sample_fields(fo, item, media_dir).items():
                sample[key] = value
        for key, value in fields.get(item.id, {}).items():
            sample[key] = value
        batch.append(sample)
    dataset.add_samples(batch, progress=False)
    if fields or stage:  # the grid shows truth, prediction and correct; top_k and the rest one click away
        from fiftyone.core.odm.dataset import ActiveFields

        shown = [f for f in ("ground_truth", "prediction", "correct", "label_distance", "miou",
                             "pseudo_label", "cam") if dataset.has_field(f)]
        dataset.app_config.active_fields = ActiveFields(paths=shown)
        dataset.save()
    return dataset


def browse(dataset_id: str, split: str | None = None, profile: Profile | None = None, *,
           run: str | None = None, stage: str | None = None, limit: int | None = None, port: int = 5151,
           address: str = "127.0.0.1", wait: bool = True):
    """Build the dataset and launch the App on localhost (blocks until the App is closed)."""
    dataset = build_fiftyone_dataset(dataset_id, split, profile, run=run, stage=stage, limit=limit)  # bad input fails first
    import fiftyone as fo

    session = fo.launch_app(dataset, port=port, address=address, remote=True)
    info = dataset.info
    print(f"FiftyOne App: http://{address}:{port} ({len(dataset)} samples of {dataset_id}/{info['split']}, "
          f"{info['profile']} profile{', run ' + run if run else ''}{', stage ' + stage if stage else ''}); "
          "Ctrl-C to stop", flush=True)
    if wait:
        session.wait()
    return session
