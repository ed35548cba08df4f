"""Stages 2 and 3 of web-video WSSS (Hong et al., arXiv 1701.00352) as one inference step.

`video-masks` (from a `wsss-cam` stage, the encoder, with `dataset: web-videos-voc`): for every
video of the user's crawl, with its query class q (the video's label):

1. the encoder's sigmoid class probabilities per frame; frames whose probability for q is below
   `threshold` are rejected (stage 2, reprolab.models.segmentation.frame_filter);
2. the localization map of q in each kept frame: the encoder's multi-scale + flip CAM (as the
   `cams` step sums it), normalized by its maximum over the video (ours, NOTES.md);
3. the video's object masks from the maps by the spatio-temporal graph cut (stage 3,
   reprolab.models.segmentation.video_graph), rejected frames forced to background.

Output: a derived split of the videos with at least `min_kept` kept frames, label = q, payload
`video_masks` (arrays `masks` uint8 [T, H, W], 1 = object, and `keep` bool [T]): the (frame,
mask, class) triples the class-agnostic decoder of stage 4 trains on (reprolab.tasks.web_video).
Metrics: frames and videos kept.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reprolab.data.derived import DerivedRows
from reprolab.pipeline.steps import InferenceRun, inference_step


class VideoMaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float = Field(default=0.5, gt=0, lt=1, description="frame filter: keep frames whose "
                             "probability for the query class is at least this (ours, NOTES.md)")
    scales: list[float] = Field(default=[1.0, 0.5, 1.5, 2.0], description="CAM scales (the cams step's)")
    flip: bool = True
    min_kept: int = Field(default=1, ge=1, description="videos with fewer kept frames are left out")
    segments: int = Field(default=150, gt=0, description="SLIC superpixels per frame (video_graph)")
    map_threshold: float = Field(default=0.1, ge=0, lt=1, description="the map score the graph's unary "
                                 "treats as neutral (video_graph)")


def video_frames(split, index: int):
    """uint8 [T, H, W, 3] of every frame of video `index` of a prepared split."""
    from reprolab.data.datasets.video import read_clip

    return read_clip(split, index, range(split.num_frames[index])).permute(0, 2, 3, 1).numpy()


def frame_scores_and_maps(model, frames, query: int, options: VideoMaskOptions, input_config: dict):
    """(probabilities [T, 20], maps [T, H, W] of the query class) of one video's frames.

    A map is the query class's multi-scale + flip CAM (the `cams` step's sum over scales and
    mirrors), divided by its maximum over the whole video, not per frame as for still images:
    a frame where the class is barely active keeps a weak map instead of one stretched to 1."""
    import torch
    import torch.nn.functional as F

    from reprolab.data.datasets.masks import normalize

    device = next(model.parameters()).device
    scores, maps = [], []
    with torch.no_grad():
        for frame in frames:
            image = normalize(torch.from_numpy(frame).permute(2, 0, 1), input_config).to(device)[None]
            scores.append(torch.sigmoid(model(image))[0].cpu())
            size, total = image.shape[-2:], torch.zeros(image.shape[-2:], device=device)
            for scale in options.scales:
                scaled = image if scale == 1 else F.interpolate(
                    image, (round(size[0] * scale), round(size[1] * scale)), mode="bicubic", align_corners=False)
                for mirrored in ((False, True) if options.flip else (False,)):
                    cam = model.forward_cam(scaled.flip(-1) if mirrored else scaled)[:, query:query + 1]
                    cam = F.interpolate(cam, size, mode="bilinear", align_corners=False)[0, 0]
                    total += cam.flip(-1) if mirrored else cam
            maps.append(total.cpu())
    maps = torch.stack(maps)
    return torch.stack(scores).numpy(), (maps / (maps.max() + 1e-5)).numpy()


@inference_step("video-masks", VideoMaskOptions)
def video_masks(run: InferenceRun, options: VideoMaskOptions) -> DerivedRows:
    """Frame filter, localization maps and graph-cut masks of every video (stages 2 and 3)."""
    import numpy as np

    from reprolab.data.datasets.masks import encode_array
    from reprolab.models.segmentation.frame_filter import keep_frames
    from reprolab.models.segmentation.video_graph import VideoGraphConfig, segment_video

    model, split = run.model.eval(), run.split
    config = VideoGraphConfig(segments=options.segments, map_threshold=options.map_threshold)
    indices, labels, payloads, kept_counts = [], [], [], []
    frames_total = frames_kept = 0
    for index in range(len(split)):
        query = int(split.labels[index])
        frames = video_frames(split, index)
        scores, maps = frame_scores_and_maps(model, frames, query, options, run.task.input_config)
        keep = keep_frames(scores, query, options.threshold)
        frames_total += len(keep)
        frames_kept += int(keep.sum())
        if keep.sum() < options.min_kept:
            continue
        masks = segment_video(frames, np.where(keep[:, None, None], maps, 0.0), keep=keep, config=config)
        indices.append(index)
        labels.append(query)
        kept_counts.append(int(keep.sum()))
        payloads.append({"video_masks": encode_array(masks=masks.astype(np.uint8), keep=keep)})
    metrics = {"videos": float(len(split)), "videos_kept": float(len(indices)),
               "frames": float(frames_total), "frames_kept": float(frames_kept),
               "kept_fraction": frames_kept / max(1, frames_total)}
    if not indices:
        raise ValueError(f"video-masks: the frame filter (threshold {options.threshold}) rejected "
                         f"every frame of the {len(split)} videos of {split.dataset}/{split.split}: "
                         "is the encoder trained (its stage's CAM mIoU), and are these videos of VOC classes?")
    return DerivedRows(indices=indices, labels=labels, columns={"kept_frames": kept_counts},
                       payloads=payloads, metrics=metrics)
