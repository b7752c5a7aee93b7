"""Frame sources and their errors: missing, not a video, truncated, streams that do not answer, early ends."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest
from helpers import need_data

from facelens.errors import VideoError
from facelens.io.video import FileSource, ImageSequenceSource, IterableSource, LiveSource, open_source, probe

HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")


def test_video_file_source_reads_every_frame():
    clip = need_data(*HAMILTON)
    with open_source(clip) as src:
        assert isinstance(src, FileSource)
        assert src.size == (640, 360) and abs(src.fps - 29.97) < 0.01
        frames = list(src)
    assert len(frames) == src.frame_count == probe(clip)["frames"]
    assert src.error is None
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[30].time == pytest.approx(30 / src.fps)


def test_video_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        open_source(tmp_path / "absent.mp4")


def test_video_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="not a readable video"):
        open_source(path)


def test_video_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_source(path)


def test_video_truncated_mp4(tmp_path):
    """The clip's index (moov atom) is at its end: a cut copy cannot be opened, and says so."""
    data = need_data(*HAMILTON).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match="truncated"):
        open_source(path)


def _mjpg_clip(path, frames: int = 40):
    src = cv2.VideoCapture(str(need_data(*HAMILTON)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 29.97, (640, 360))
    for _ in range(frames):
        ok, frame = src.read()
        assert ok
        writer.write(frame)
    writer.release()
    src.release()
    return path


def test_video_truncated_avi_reads_up_to_the_cut(tmp_path):
    """An AVI cut mid-way plays up to the cut; the source reports the shortfall instead of ending silently."""
    whole = _mjpg_clip(tmp_path / "whole.avi")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut) as src:
        frames = list(src)
    assert 5 < len(frames) < 40
    assert src.error is not None and "truncated" in src.error


def test_video_refused_stream_fails_fast():
    started = time.monotonic()
    with pytest.raises(VideoError, match="rtsp://127.0.0.1:9/x"):
        open_source("rtsp://127.0.0.1:9/x", timeout=3)
    assert time.monotonic() - started < 3 + 1.5


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_video_silent_stream_times_out(scheme):
    """A server that accepts the connection and never says anything: a clear error within the timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    held = []

    def accept():
        try:
            while True:
                held.append(server.accept()[0])
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    timeout = 1.5
    started = time.monotonic()
    try:
        with pytest.raises(VideoError, match=f"127.0.0.1:{port}.*(within|cannot open)"):
            open_source(f"{scheme}://127.0.0.1:{port}/live", timeout=timeout)
        assert time.monotonic() - started < timeout + 1.5
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_video_stream_password_is_not_shown():
    with pytest.raises(VideoError) as info:
        LiveSource("rtsp://admin:secret@127.0.0.1:9/x", timeout=2)
    assert "secret" not in str(info.value) and "admin:***@" in str(info.value)


def test_video_image_folder_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((20, 30, 3), i, np.uint8))
    src = open_source(tmp_path, fps=10)
    assert isinstance(src, ImageSequenceSource)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert frames[2].time == pytest.approx(0.2)
    # a printf pattern follows consecutive numbers and stops at a gap of more than 5 (3..9 are missing)
    assert [int(f.image[0, 0, 0]) for f in open_source(str(tmp_path / "f%d.png"))] == [1, 2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no images"):
        open_source(tmp_path / "empty")


def test_video_iterable_source_ends_with_the_reason():
    def dying():
        for _ in range(3):
            yield np.zeros((8, 8, 3), np.uint8)
        raise ConnectionError("camera unplugged")

    src = IterableSource(dying(), fps=5)
    assert len(list(src)) == 3
    assert "after 3 frames" in src.error and "camera unplugged" in src.error


def test_file_source_closed_from_another_thread_ends_its_reader():
    """The video loop reads a file source in a prefetch thread and closes it from its own thread: the reader ends
    instead of waiting forever for frames the stopped decoder will never queue."""
    src = FileSource(need_data("video", "face_recognition", "short_hamilton_clip.mp4"), prefetch=2)
    read, first = [], threading.Event()

    def reader() -> None:
        for frame in src:
            read.append(frame.index)
            first.set()
            time.sleep(0.05)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert first.wait(10)
    src.close()
    thread.join(5)
    assert not thread.is_alive() and 0 < len(read) < 275
    assert src.error is None  # stopped on purpose, not truncated
