"""The dataset manager: fetch -> extract -> prepare -> read, for every card in datasets/<id>/.

API overview (import what you need from the submodules; this package imports nothing heavy):

Layout (`reprolab.data.layout`)
    `DatasetLayout(dataset_id, profile, root=None)`: `.raw`, `.extracted`, `.prepared`,
    `.mirror` (tiny only), `.manifest(split)`, `.split_info(split)`, `.shards_dir(split)`.
    Everything of a profile lives in datasets/<id>/<profile>/{raw,extracted,prepared} (tiny also
    has mirror/, the fixture "download site"): full and tiny never overwrite each other.

Fetch (`reprolab.data.fetch`, `reprolab.data.extract`)
    `fetch_dataset(card, profile)`: every source downloaded/copied (HTTP(S) with resume and
    retries, file:// or a path), verified (sha256/md5; `unpinned`: size only, with a warning),
    moved into raw/ atomically, then archives extracted safely into extracted/<archive stem>/.
    A file placed by hand in raw/ is accepted when its checksum matches. Errors: `ChecksumError`
    (bytes quarantined in .state/quarantine/), `HtmlPageError` (login wall / quota page),
    `SourceUnavailableError` (404 on every URL), `reprolab.errors.MissingDataError` (manual files
    missing: names the page, the files and the folder), `UnsafeArchiveError` (`..`, absolute paths,
    links out), `reprolab.data.locks.BusyError` (another fetch of the same dataset is running).
    In the tiny profile the sources come from the fixture mirror (see fixtures).

Fixtures (`reprolab.data.fixtures`)
    `reprolab.data.fixtures.<id>.write_raw(card, out_dir, seed=0) -> [file names]` writes the
    dataset's raw files in the real layout, small, sized by the card's `tiny:` block;
    `write_mirror(card, dir)` adds SHA256SUMS; `ensure_mirror(card, layout)` builds the tiny mirror.

Prepare (`reprolab.data.prepare`)
    `reprolab.data.prepare.<id>` defines `plan(ctx) -> [SplitPlan]` and `encode(spec, options)
    -> {"frames": [jpeg, ...]} | {"image": bytes, ...}`. `prepare_dataset(card, profile,
    workers=None)` runs encode over a process pool into shards (`reprolab.data.shards`: Arrow IPC
    files, written atomically, skipped when already done), checks counts against the card
    (`splits.<split>.samples`, `expect.classes`; tiny: `tiny.splits.<split>`, `tiny.classes`) and
    split disjointness, and writes `prepared/<split>.parquet` (`reprolab.data.manifest`: id,
    label as ClassLabel, shard, row, sha256, num_frames, extras) and `<split>.json` (counts,
    classes, content fingerprint = sha256 over ids, labels and bytes).

Read (`reprolab.data.reader`)
    `open_split(dataset_id, split, profile) -> PreparedSplit` with `len()`, `.classes`,
    `.fingerprint`, `split[i] -> Sample(index, id, label, num_frames, frames=[JPEG bytes], extra)`
    and `split.frames(i, indices)`; `decode_frames(frames, indices) -> uint8 [T, 3, H, W]`
    (torchvision.io.decode_jpeg). Needs only pyarrow; safe in DataLoader workers.

Status and browsing (`reprolab.data.status`, `reprolab.data.browse`)
    `reprolab data status` (table per card and profile), `reprolab browse <id>` (FiftyOne App;
    `--run` shows `<run dir>/predictions.parquet`: columns id, prediction, optional confidence).

CLI (`reprolab.cli.data`): `reprolab data fetch|prepare|status <id> [--profile tiny]`,
`reprolab browse <id> [--split S] [--run ID]`.
"""

from reprolab.data.layout import PROFILES, DatasetLayout
from reprolab.data.reader import PreparedSplit, Sample, decode_frames, open_split

__all__ = ["PROFILES", "DatasetLayout", "PreparedSplit", "Sample", "decode_frames", "open_split"]
