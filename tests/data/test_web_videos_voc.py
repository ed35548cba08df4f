"""web-videos-voc: the tiny crawl (real fetch + prepare), user folders and list files, and the
message when no videos are supplied (exit 4)."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.cli import EXIT_MISSING_DATA, main
from reprolab.data.fixtures.synthetic_videos import encode_video
from reprolab.data.fixtures.web_videos_voc import videos
from reprolab.data.prepare import PrepareError, prepare_dataset
from reprolab.data.reader import decode_frames, open_split
from reprolab.errors import MissingDataError

from .conftest import card_of, make_checkout
from .test_cub200 import prepare_tiny

QUIET = pytest.mark.filterwarnings("ignore:web-videos-voc. no videos for")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    with pytest.warns(UserWarning, match="no videos for 17 classes"):
        prepare_tiny(root, "web-videos-voc")
    return root


def test_tiny_crawl_has_objects_and_distractors(tiny_root):
    split = open_split("web-videos-voc", "all", "tiny", root=tiny_root)
    world = {v.name.split("/", 1)[1]: v for v in videos(card_of(tiny_root, "web-videos-voc"))}
    assert len(split) == 9 and sorted(set(split.labels)) == [0, 1, 2]
    assert sum("distractor" in i for i in split.ids) == 3
    for i in range(len(split)):
        sample, video = split[i], world[split.ids[i]]
        frames = decode_frames(sample.frames).permute(0, 2, 3, 1).float().numpy()
        assert frames.shape == video.frames.shape  # tiny keeps every frame at its size
        assert np.abs(frames - video.frames).mean() < 8   # the rendered frames (H.264 + JPEG: ~4.4)
        assert video.masks[:3].sum() == 0 and video.masks[3:].any((1, 2)).all()  # 3 leading frames
        assert video.relevant.any() == ("distractor" not in sample.id)
        assert video.query == sample.label and (video.shown == video.query) != ("distractor" in sample.id)
    # the object moves: its mask is not the same in the first and last frames that show it
    video = next(iter(world.values()))
    assert (video.masks[3] != video.masks[-1]).sum() > 50


def _user_folder(root, card):
    """Three of the fixture's videos, as a user would lay them out (and as a list file)."""
    folder = root / "my_crawl"
    lines = []
    for video in videos(card)[:3]:
        target = folder / video.name.removeprefix("web_videos/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_video(video.frames, 8, "mp4"))
        lines.append(f"{video.name.split('/')[1]} my_crawl/{target.relative_to(folder).as_posix()}")
    (root / "crawl.txt").write_text("# class path\n" + "\n".join(lines) + "\n")
    return folder, root / "crawl.txt"


@QUIET
@pytest.mark.parametrize("kind", ["folder", "list"])
def test_user_folder_or_list_prepares_with_frame_sampling(tmp_path, kind):
    root = make_checkout(tmp_path / "checkout", ("web-videos-voc",))
    card = card_of(root, "web-videos-voc")
    folder, listing = _user_folder(tmp_path, card)
    given = folder if kind == "folder" else listing
    reports = prepare_dataset(card, "full", root=root, workers=1, progress=False,
                              allow_count_mismatch=True, options={"videos": str(given)})
    assert [r.samples for r in reports] == [3]
    split = open_split("web-videos-voc", "all", "full", root=root)
    # ids: the path under the class folder, or the path as the list writes it
    prefix = "" if kind == "folder" else "my_crawl/aeroplane/"
    assert split.ids == [f"aeroplane/{prefix}{name}" for name in
                         ("aeroplane_000.mp4", "aeroplane_001.mp4", "aeroplane_distractor_000.mp4")]
    sample = split[0]
    # 12 frames at 8 fps (0 to 1.375 s) sampled at 5 fps: 0, 0.2, ..., 1.2 s; shorter side 64 -> 256
    assert sample.num_frames == 7
    assert tuple(decode_frames(sample.frames[:1]).shape[2:]) == (256, 320)


def test_unknown_class_folder_is_named(tmp_path):
    root = make_checkout(tmp_path / "checkout", ("web-videos-voc",))
    (tmp_path / "crawl" / "aeroplanes").mkdir(parents=True)
    (tmp_path / "crawl" / "aeroplanes" / "a.mp4").write_bytes(b"x")
    with pytest.raises(PrepareError, match=r"\[.aeroplanes.\] are not VOC class names"):
        prepare_dataset(card_of(root, "web-videos-voc"), "full", root=root, workers=1,
                        progress=False, options={"videos": str(tmp_path / "crawl")})


def test_bad_list_line_names_file_and_line(tmp_path):
    root = make_checkout(tmp_path / "checkout", ("web-videos-voc",))
    (tmp_path / "crawl.txt").write_text("cat missing.mp4\n")
    with pytest.raises(MissingDataError, match=r"crawl.txt line 1: expected `<VOC class> <video path>`"):
        prepare_dataset(card_of(root, "web-videos-voc"), "full", root=root, workers=1,
                        progress=False, options={"videos": str(tmp_path / "crawl.txt")})


def test_no_videos_exits_4_saying_how_to_assemble_them(tmp_path, monkeypatch, capsys):
    root = make_checkout(tmp_path / "checkout", ("web-videos-voc",))
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    assert main(["data", "prepare", "web-videos-voc", "--workers", "1", "--quiet"]) == EXIT_MISSING_DATA
    message = capsys.readouterr().err
    for part in ("web_videos.tar is not placed", "class name as the query", "--option videos=DIR",
                 "DIR/<class>/<any name>.{mp4,webm,mkv,avi}", "aeroplane bicycle", "tvmonitor",
                 "not known to us", str(root / "datasets" / "web-videos-voc")):
        assert part in message, part
    assert main(["data", "prepare", "web-videos-voc", "--quiet", "--option",
                 f"videos={tmp_path / 'nowhere'}"]) == EXIT_MISSING_DATA
    assert "no such folder or list file" in capsys.readouterr().err


def test_graph_stage_runs_on_the_prepared_frames(tiny_root):
    """Stage 3 on frames as the preparer stored them (H.264 then JPEG), not the rendered arrays."""
    from reprolab.models.segmentation.video_graph import segment_video
    from tests.models.test_video_graph import iou, partial_map

    split = open_split("web-videos-voc", "all", "tiny", root=tiny_root)
    world = {v.name.split("/", 1)[1]: v for v in videos(card_of(tiny_root, "web-videos-voc"))}
    graph, half = [], []
    for i in range(len(split)):
        video = world[split.ids[i]]
        frames = decode_frames(split[i].frames).permute(0, 2, 3, 1).numpy()
        maps = partial_map(video.masks, np.random.default_rng([0, 7]))
        graph.append(iou(segment_video(frames, maps, keep=video.masks.any((1, 2))), video.masks))
        half.append(iou(maps >= 0.5, video.masks))
    # measured: graph 0.744 mean (0.55-0.93), maps >= 0.5: 0.228; the rendered frames: 0.75 / 0.23
    assert np.mean(graph) > np.mean(half) + 0.35, (graph, half)
