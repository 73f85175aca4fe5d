"""Video I/O (PyAV) and data sources: round trips, .npy videos, damaged files, sample-video fetching."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from spikestream.data import (
    SAMPLE_VIDEOS,
    SampleDataError,
    VideoError,
    data_locations,
    default_video_codec,
    find_sample_video,
    moving_objects_clip,
    read_frames,
    sources,
    video_info,
    write_video,
)
from spikestream.data.video import _presentation_order

CODECS = ["libx264", "mjpeg"] if default_video_codec() == "libx264" else ["mjpeg"]
MEAN_ABS_ERROR = {"libx264": 1.5, "mjpeg": 2.0}  # grey levels, lossy codecs on a noise-free synthetic clip
MAX_ABS_ERROR = 60  # at the sharpest object edges


@pytest.fixture(scope="module")
def clip():
    return moving_objects_clip(frames=24, height=48, width=80, objects=4, seed=3, noise=0.0)


def _decoded(path, **options) -> list:
    return list(read_frames(path, **options))


# --- write, then read back ----------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_written_video_reads_back(tmp_path, clip, codec, suffix):
    path = write_video(tmp_path / f"clip{suffix}", clip.frames, fps=12, codec=codec)
    frames = _decoded(path)
    assert [f.index for f in frames] == list(range(24))
    images = np.stack([f.image for f in frames]).astype(int)
    assert images.shape == clip.frames.shape and frames[0].image.dtype == np.uint8
    error = np.abs(images - clip.frames)
    assert error.mean() < MEAN_ABS_ERROR[codec] and error.max() < MAX_ABS_ERROR
    times = np.array([f.time_s for f in frames])
    assert np.all(np.diff(times) > 0)  # monotone, in every container (no B-frames are written)
    assert np.allclose(times, np.arange(24) / 12, atol=1e-3)
    info = video_info(path)
    assert (info.frames, info.fps, info.size) == (24, 12.0, (80, 48))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


def test_color_frames_resizing_and_ranges(tmp_path, clip):
    rgb = np.stack([clip.frames, 255 - clip.frames, clip.frames // 2], axis=-1)  # (N, H, W, 3)
    path = write_video(tmp_path / "color.mp4", rgb, fps=25)
    color = _decoded(path, grayscale=False)
    assert color[0].image.shape == (48, 80, 3)
    # 4:2:0 chroma keeps colour at half resolution, and these channels differ at every edge
    assert np.abs(np.stack([f.image for f in color]).astype(int) - rgb).mean() < 8
    gray = _decoded(path)
    assert gray[0].image.shape == (48, 80)
    # resizing is OpenCV's INTER_AREA applied to the decoded frame
    small = _decoded(path, size=(40, 24))
    assert small[0].image.shape == (24, 40)
    assert np.array_equal(small[5].image, cv2.resize(gray[5].image, (40, 24), interpolation=cv2.INTER_AREA))
    # start and max_frames select by index; times stay those of the file
    window = _decoded(path, start=5, max_frames=3)
    assert [f.index for f in window] == [5, 6, 7] and window[0].time_s == pytest.approx(0.2)
    assert np.array_equal(window[0].image, gray[5].image)
    assert _decoded(path, max_frames=0) == [] and _decoded(path, start=100) == []


def test_odd_frame_sizes_survive_h264(tmp_path):
    frames = np.tile(np.linspace(0, 255, 33, dtype=np.uint8), (5, 21, 1))  # (5, 21, 33)
    path = write_video(tmp_path / "odd.mp4", frames, fps=10)
    assert np.abs(np.stack([f.image for f in read_frames(path)]).astype(int) - frames).mean() < 2


def test_failed_write_leaves_the_old_file_and_no_debris(tmp_path, clip):
    path = write_video(tmp_path / "clip.mp4", clip.frames[:5], fps=10)
    before = path.read_bytes()
    mismatched = [clip.frames[0], clip.frames[1][:, :40]]
    with pytest.raises(ValueError, match=r"frame 1 is uint8 .* all frames must match"):
        write_video(path, mismatched, fps=10)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize(("frames", "options", "error", "message"), [
    ([], {}, ValueError, "at least one frame"),
    ([np.zeros((4, 4), np.float32)], {}, ValueError, "must be uint8"),
    ([np.zeros((4, 4), np.uint8)], {"fps": 0}, ValueError, "fps must be a positive number"),
    ([np.zeros((4, 4), np.uint8)], {"codec": "vp9"}, ValueError, "codec must be 'libx264' or 'mjpeg'"),
])
def test_write_rejects_bad_input(tmp_path, frames, options, error, message):
    with pytest.raises(error, match=message):
        write_video(tmp_path / "x.mp4", frames, **options)


def test_write_names_unknown_containers_and_missing_folders(tmp_path):
    frame = [np.zeros((4, 4), np.uint8)]
    with pytest.raises(VideoError, match=r"cannot write video '.*x\.foo': no container format for '\.foo'"):
        write_video(tmp_path / "x.foo", frame)
    with pytest.raises(VideoError, match=r"folder '.*nowhere' does not exist"):
        write_video(tmp_path / "nowhere" / "x.mp4", frame)


# --- .npy arrays as videos ------------------------------------------------------------------------


@pytest.mark.parametrize("array", [
    np.arange(3 * 5 * 7, dtype=np.uint8).reshape(3, 5, 7),
    np.linspace(0, 1, 4 * 2 * 5 * 6, dtype=np.float32).reshape(4, 2, 5, 6),
])
def test_npy_arrays_are_read_frame_by_frame_as_stored(tmp_path, array):
    path = tmp_path / "frames.npy"
    np.save(path, array)
    frames = _decoded(path, size=(64, 64), grayscale=True)  # neither applies: the shapes are the user's
    assert len(frames) == len(array)
    assert all(np.array_equal(f.image, a) and f.image.dtype == array.dtype for f, a in zip(frames, array, strict=True))
    assert [f.index for f in _decoded(path, start=1, max_frames=1)] == [1]
    info = video_info(path)
    assert (info.frames, info.size, info.codec) == (len(array), (array.shape[-1], array.shape[-2]), "npy")


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((4, 4), np.uint8),
     r"expected frames \(N, H, W\) or \(N, C, H, W\) of uint8 or float, got uint8 \(4, 4\)$"),
    (np.zeros((2, 4, 4), np.int32), "got int32"),
    (np.array([None, 1], dtype=object), "not a .npy array NumPy can load"),
])
def test_bad_npy_arrays_are_rejected(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(VideoError, match=message):
        read_frames(path)


# --- damaged and missing files --------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(VideoError) as error:
        read_frames(tmp_path / "x.avi")
    assert str(error.value) == f"cannot read video '{tmp_path / 'x.avi'}': no such file"
    with pytest.raises(VideoError, match="no such file"):
        video_info(tmp_path / "x.npy")


@pytest.mark.parametrize("name", ["notes.avi", "notes.mp4", "notes.npy"])
def test_a_text_file_is_not_a_video(tmp_path, name):
    path = tmp_path / name
    path.write_text("hello, this is not a video\n")
    with pytest.raises(VideoError, match=f"cannot read video '.*{name}': not a"):
        read_frames(path)


def test_a_folder_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="not a file"):
        read_frames(tmp_path)


def test_truncated_avi_yields_the_frames_before_the_cut(tmp_path):
    noisy = moving_objects_clip(frames=24, height=48, width=80, seed=3, noise=0.05).frames  # ~2 kB per frame
    data = write_video(tmp_path / "whole.avi", noisy, fps=10).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])  # through the middle of a frame's packet
    frames = _decoded(cut)  # no error: the decodable prefix, then the end
    assert 0 < len(frames) < len(noisy)
    assert [f.index for f in frames] == list(range(len(frames)))
    complete = _decoded(tmp_path / "whole.avi")
    for damaged, intact in zip(frames[:-1], complete, strict=False):  # the frame at the cut may be concealed
        assert np.array_equal(damaged.image, intact.image)
    cut.write_bytes(data[:6000])  # the headers and part of the first frame: nothing decodes
    with pytest.raises(VideoError, match="no frame could be decoded"):
        _decoded(cut)


def test_truncated_mp4_cannot_be_opened(tmp_path, clip):
    whole = write_video(tmp_path / "whole.mp4", clip.frames, fps=10)  # its index sits at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(VideoError, match="not a video file PyAV can decode"):
        read_frames(cut)


def test_permuted_timestamps_are_put_back_in_presentation_order():
    # AVI with B-frames: frames leave the decoder in order, but their pts labels are shuffled
    pts = [1, 2, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, None]
    frames = [SimpleNamespace(pts=p, dts=None, number=i) for i, p in enumerate(pts)]
    ordered = list(_presentation_order(frames, fps=25.0, time_base=1 / 25))
    assert [f.number for f, _ in ordered] == list(range(len(pts)))  # frames keep their order
    assert [t for _, t in ordered] == list(range(1, 14))  # the missing pts is one period after the newest


# --- sample videos --------------------------------------------------------------------------------


def test_real_sample_video_vtest():
    try:
        path = find_sample_video("vtest.avi")
    except SampleDataError as error:
        pytest.skip(f"vtest.avi is neither installed nor fetchable here: {error}")
    frames = _decoded(path, max_frames=10)
    assert len(frames) == 10 and frames[0].image.shape == (576, 768)
    assert [round(f.time_s, 6) for f in frames] == [i / 10 for i in range(10)]
    assert video_info(path).size == (768, 576)
    assert frames[0].image.std() > 10  # a real picture, not a blank


@pytest.fixture
def no_installed_samples(tmp_path, monkeypatch):
    """A machine without opencv-doc, with an empty cache in tmp_path/cache."""
    monkeypatch.setenv(sources.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "OPENCV_DOC_DATA", tmp_path / "installed")
    monkeypatch.setattr(sources, "_package_files", lambda package: [])
    return tmp_path


def _tiny_opencv_doc(folder: Path) -> tuple[Path, dict[str, bytes]]:
    """A fake opencv-doc .deb holding small stand-ins for the sample videos, tree.avi gzip-compressed."""
    root = folder / "package"
    data = root / "usr/share/doc/opencv-doc/examples/data"
    data.mkdir(parents=True)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text("Package: opencv-doc\nVersion: 0.1\nArchitecture: all\n"
                                         "Maintainer: Test <test@example.org>\nDescription: test\n")
    contents = {name: os.urandom(3000) for name in SAMPLE_VIDEOS}
    (data / "vtest.avi").write_bytes(contents["vtest.avi"])
    (data / "Megamind.avi").write_bytes(contents["Megamind.avi"])
    (data / "tree.avi.gz").write_bytes(gzip.compress(contents["tree.avi"]))
    package = folder / "opencv-doc_0.1_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(package)],
                   check=True, capture_output=True, timeout=60)
    return package, contents


def _fake_apt_get(folder: Path, script: str) -> Path:
    """Put an ``apt-get`` shell script first on PATH; it appends each call to calls.log."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/calls.log"\n{script}\n')
    apt_get.chmod(apt_get.stat().st_mode | stat.S_IXUSR)
    return bin_dir


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


@needs_dpkg
def test_sample_videos_are_fetched_from_the_package_into_the_cache(no_installed_samples, monkeypatch):
    tmp_path = no_installed_samples
    package, contents = _tiny_opencv_doc(tmp_path)
    bin_dir = _fake_apt_get(tmp_path, f'[ "$1" = download ] && cp "{package}" .')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert data_locations()["vtest.avi"] == "missing"

    path = find_sample_video("tree.avi")
    assert path == tmp_path / "cache/debian/opencv-doc/tree.avi"
    assert path.read_bytes() == contents["tree.avi"]  # un-gzipped on the way
    for name in SAMPLE_VIDEOS:  # one download serves all three
        assert find_sample_video(name).read_bytes() == contents[name]
    assert (tmp_path / "calls.log").read_text().splitlines() == ["download opencv-doc"]
    assert sorted(p.name for p in (tmp_path / "cache/debian").iterdir()) == ["opencv-doc"]  # the .deb is gone
    assert data_locations()["vtest.avi"] == str(tmp_path / "cache/debian/opencv-doc/vtest.avi")


@needs_dpkg
def test_a_failed_download_refreshes_the_package_lists_once(no_installed_samples, monkeypatch):
    tmp_path = no_installed_samples
    package, _ = _tiny_opencv_doc(tmp_path)
    script = (f'[ "$1" = update ] && touch "{tmp_path}/updated" && exit 0\n'
              f'[ -e "{tmp_path}/updated" ] && cp "{package}" . && exit 0\n'
              'echo "E: Unable to locate package opencv-doc" >&2; exit 100')
    monkeypatch.setenv("PATH", f"{_fake_apt_get(tmp_path, script)}{os.pathsep}{os.environ['PATH']}")
    assert find_sample_video("vtest.avi").is_file()
    assert (tmp_path / "calls.log").read_text().splitlines() == ["download opencv-doc", "update",
                                                                 "download opencv-doc"]


def test_an_impossible_download_says_why_and_how_to_get_the_file(no_installed_samples, monkeypatch):
    tmp_path = no_installed_samples
    script = 'echo "E: Unable to locate package opencv-doc" >&2; exit 100'
    monkeypatch.setenv("PATH", f"{_fake_apt_get(tmp_path, script)}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(SampleDataError) as error:
        find_sample_video("Megamind.avi")
    message = str(error.value)
    assert "sample video 'Megamind.avi' is not available" in message
    assert "E: Unable to locate package opencv-doc" in message  # apt-get's own words
    assert "'apt-get install opencv-doc'" in message and "pass the path of a video file" in message
    assert "\n" not in message


def test_no_download_and_no_debian_tools(no_installed_samples, monkeypatch):
    with pytest.raises(SampleDataError, match="neither installed nor cached, and download is off"):
        find_sample_video("vtest.avi", download=False)
    monkeypatch.setenv("PATH", str(no_installed_samples / "empty"))
    with pytest.raises(SampleDataError, match="'apt-get' is not on this machine"):
        find_sample_video("vtest.avi")
    with pytest.raises(ValueError, match=r"unknown sample video 'x\.avi'; choose one of: vtest\.avi"):
        find_sample_video("x.avi")


def test_an_installed_package_is_used_in_place_and_gzip_is_handled(no_installed_samples):
    installed = no_installed_samples / "installed"
    installed.mkdir()
    (installed / "vtest.avi").write_bytes(b"vtest")
    (installed / "tree.avi.gz").write_bytes(gzip.compress(b"tree"))
    assert find_sample_video("vtest.avi", download=False) == installed / "vtest.avi"
    tree = find_sample_video("tree.avi", download=False)
    assert tree.read_bytes() == b"tree" and tree.parent == no_installed_samples / "cache/debian/opencv-doc"


def test_data_locations_report_paths_or_missing(no_installed_samples, monkeypatch):
    fashion = no_installed_samples / "fashion"
    monkeypatch.setattr(sources, "FASHION_MNIST_DIR", fashion)
    locations = data_locations()
    assert set(locations) == {*SAMPLE_VIDEOS, "fashion-mnist", "cache"}
    assert locations["fashion-mnist"] == "missing" and locations["tree.avi"] == "missing"
    assert locations["cache"] == str(no_installed_samples / "cache")
    fashion.mkdir()
    for name in sources.FASHION_MNIST_FILES:
        (fashion / name).write_bytes(b"")
    assert data_locations()["fashion-mnist"] == str(fashion)
