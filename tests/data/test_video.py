import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg

from reprolab.data.datasets.video import (
    VideoClipDataset,
    decode_video,
    dense_test_indices,
    dense_train_indices,
    segment_test_indices,
    segment_train_indices,
)


class FakeSplit:
    """The reader interface VideoClipDataset uses (reprolab.data.reader.PreparedSplit)."""

    def __init__(self, videos, labels, classes):
        self.encoded = [[bytes(encode_jpeg(frame, quality=95).numpy()) for frame in video] for video in videos]
        self.num_frames = [len(v) for v in videos]
        self.labels = labels
        self.classes = classes
        self.fingerprint = "fake"

    def __len__(self):
        return len(self.labels)

    def frames(self, index, frame_indices):
        return [self.encoded[index][int(i)] for i in frame_indices]


def numbered_video(frames=16, h=48, w=64):
    """Frame k is a flat grey of value 10*k; its left half is darker than its right half."""
    video = torch.zeros(frames, 3, h, w, dtype=torch.uint8)
    for k in range(frames):
        video[k] = 10 * k + 20
        video[k, :, :, : w // 2] -= 15
    return video


def test_segment_sampling_train_one_frame_per_segment_test_centres():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = segment_train_indices(42, 8, rng)
        assert all(5 * s <= i < 5 * (s + 1) for s, i in enumerate(idx))  # 42 // 8 = 5 per segment
    (centres,) = segment_test_indices(42, 8)
    assert centres.tolist() == [2, 7, 13, 18, 23, 28, 34, 39]  # int(2.625 + 5.25 x)
    assert segment_train_indices(5, 8, rng).tolist() == [0] * 8  # too short: frame 0 repeated
    two = segment_test_indices(42, 8, clips=2)
    assert two[0].tolist() == centres.tolist() and (two[1] > two[0]).all()


def test_dense_sampling_windows():
    rng = np.random.default_rng(0)
    idx = dense_train_indices(300, 8, rng)
    assert np.all(np.diff(idx) == 8) and 0 <= idx[0] < 236
    short = dense_train_indices(40, 8, rng)
    assert short.tolist() == [0, 8, 16, 24, 32, 0, 8, 16]  # the window wraps (mod num_frames)
    clips = dense_test_indices(300, 8, clips=10)
    assert len(clips) == 10 and clips[0][0] == 0 and clips[-1][0] == 236


def test_dataset_train_items_follow_the_seed_and_never_flip_mirror_classes():
    classes = ["Pushing something from left to right", "Pushing something from right to left", "Moving up"]
    split = FakeSplit([numbered_video() for _ in range(3)], [0, 1, 2], classes)
    no_flip = frozenset({0, 1})
    data = VideoClipDataset(split, segments=4, train=True, resize=(48, 64), crop=32, no_flip_classes=no_flip)
    item = data[(2, 11)]
    assert item["frames"].shape == (4, 3, 32, 32) and item["label"] == 2
    assert torch.equal(item["frames"], data[(2, 11)]["frames"])
    flips = {0: 0, 2: 0}
    for seed in range(20):
        for index in flips:
            frames = data[(index, seed)]["frames"]
            flips[index] += int(frames[0, 0, 0, 0] > frames[0, 0, 0, -1])
            # frames come in temporal order: brightness rises along the clip
            means = frames.mean(dim=(1, 2, 3))
            assert torch.all(means[1:] > means[:-1])
    assert flips[0] == 0 and 3 <= flips[2] <= 17


def test_dataset_eval_items_stack_clips_times_crops_views():
    split = FakeSplit([numbered_video(frames=20)], [0], ["a"])
    data = VideoClipDataset(split, segments=4, train=False, resize=(48, 64), crop=32, clips=2, crops=3)
    item = data[(0, 0)]
    assert item["frames"].shape == (6, 4, 3, 32, 32)
    single = VideoClipDataset(split, segments=4, train=False, resize=(48, 64), crop=32)
    assert torch.equal(single[0]["frames"], single[(0, 99)]["frames"])  # no randomness at test


def test_decode_video_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(10):
            image = np.full((48, 64, 3), 20 * k + 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = decode_video(str(path), [1, 5, 9, 5])
    assert frames.shape == (4, 3, 48, 64) and frames.dtype == torch.uint8
    grey = frames.float().mean(dim=(1, 2, 3))
    assert grey.tolist() == pytest.approx([40, 120, 200, 120], abs=6)
    assert torch.equal(decode_video(path.read_bytes(), [9]), frames[2:3])
