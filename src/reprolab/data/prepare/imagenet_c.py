"""ImageNet-C -> manifests `seen` (the 15 common corruptions) and `unseen` (the 4 extra ones),
each holding every corruption at every severity (5 x 50,000 images per corruption).

Sample id `<corruption>/<severity>/<file stem>`; labels index the sorted wnids (as ImageNet);
extra columns `corruption`, `severity`. URIE's fixed evaluation draws one corruption per image
at severity 3: filter these manifests on its CSVs (or on severity == 3).
"""

from __future__ import annotations

from reprolab.data import corruptions
from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image

ARCHIVES = ("noise.tar", "blur.tar", "weather.tar", "digital.tar", "extra.tar")
SHARD_SIZE = 512


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    found = []  # (corruption, severity, wnid, path)
    for archive in ARCHIVES:
        root = ctx.extracted_dir(archive)
        for corruption_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if corruption_dir.name not in corruptions.ALL:
                raise PrepareError(f"{corruption_dir}: {corruption_dir.name!r} is not an ImageNet-C "
                                   "corruption")
            for path in sorted(corruption_dir.glob("*/*/*.JPEG")):
                severity, wnid = path.parent.parent.name, path.parent.name
                if severity not in {str(s) for s in corruptions.SEVERITIES}:
                    raise PrepareError(f"{path}: severity folder {severity!r} is not 1-5")
                found.append((corruption_dir.name, int(severity), wnid, path))
    classes = sorted({wnid for _, _, wnid, _ in found})
    index = {wnid: i for i, wnid in enumerate(classes)}
    splits: dict[str, list[SampleSpec]] = {"seen": [], "unseen": []}
    for name, severity, wnid, path in found:
        split = "seen" if name in corruptions.SEEN else "unseen"
        splits[split].append(SampleSpec(id=f"{name}/{severity}/{path.stem}", label=index[wnid],
                                        source=str(path),
                                        extra={"corruption": name, "severity": severity}))
    return [SplitPlan(split, classes, samples) for split, samples in splits.items()]


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
