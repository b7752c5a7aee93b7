"""Frame sources and an annotated-video writer.

``open_source`` turns what a user points at into a :class:`FrameSource` that yields :class:`Frame` objects
(index, timestamp in seconds, RGB uint8 image):

- a video file (mp4, avi, mkv, mov, webm… through OpenCV's FFmpeg backend), decoded in a background thread so
  decoding overlaps detection on a second core (bounded queue, nothing dropped);
- a folder of images, a glob (``frames/*.png``) or a printf pattern (``img%04d.png``), at a given fps;
- a live source: an ``rtsp://``/``http(s)://`` URL or a webcam index (``0`` or ``"0"``). Live frames go through a
  small ring buffer that keeps only the newest frames (a slow consumer skips stale frames instead of falling behind);
  opening has a timeout, and a dropped connection is reopened with exponential back-off;
- any iterable of RGB arrays (for frames produced in-process).

Every failure is a :class:`facelens.errors.VideoError` with a message that says what to check.
"""

from __future__ import annotations

import glob
from abc import ABC, abstractmethod
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facelens.errors import FacelensError, VideoError, redact_url

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")

#: Default seconds to wait for a stream to open (and for a frame from an open stream) before giving up.
OPEN_TIMEOUT = 10.0
#: Frames a live source holds for a slow consumer; older ones are dropped.
LIVE_BUFFER = 2
#: Frames a file source decodes ahead of the consumer.
FILE_PREFETCH = 8


@dataclass(frozen=True)
class Frame:
    """One decoded frame: position in the source, time in seconds from its start, RGB uint8 image."""

    index: int
    time: float
    image: np.ndarray = field(repr=False)


class FrameSource(ABC):
    """Iterate to get frames. ``fps`` (0 when unknown), ``size`` (w, h), ``frame_count`` (None when unknown),
    ``live`` (frames may be dropped), ``name``. After iteration ``error`` says why a source ended early (None when it
    ran to its end) and ``dropped`` how many live frames were skipped."""

    name: str = ""
    fps: float = 0.0
    size: tuple[int, int] = (0, 0)
    frame_count: int | None = None
    live: bool = False

    def __init__(self) -> None:
        self.error: str | None = None
        self.dropped = 0
        self.frames_read = 0

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Frames in order until the source ends (``error`` says why when it ended early)."""

    def close(self) -> None:
        """Stop background reading and release the device or file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cv_capture(target: str | int, timeout: float) -> cv2.VideoCapture:
    ms = int(timeout * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)


def _open_within(target: str | int, timeout: float, label: str) -> cv2.VideoCapture:
    """Open a capture in a helper thread and give up after ``timeout`` s, whatever the backend does with its own
    timeout options (some protocols ignore them, e.g. a server that accepts and never answers)."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["cap"] = _cv_capture(target, timeout)
        except cv2.error as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"open {label}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise VideoError(f"{label}: no answer within {timeout:g} s (check the address, port, credentials and network)")
    if "error" in box:
        raise VideoError(f"{label}: cannot open ({box['error']})")
    cap = box["cap"]
    assert isinstance(cap, cv2.VideoCapture)
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{label}: cannot open stream (nothing answered, or not a video stream)")
    return cap


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


_END = object()


class FileSource(FrameSource):
    """A video file, decoded ahead in a thread. A file that stops decoding before its announced length is reported
    in ``error`` (truncated or corrupt) after the frames that could be read."""

    def __init__(self, path: str | os.PathLike, prefetch: int = FILE_PREFETCH) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise VideoError(f"{path}: no such file")
        if self.path.is_dir():
            raise VideoError(f"{path}: is a folder (give a video file, or a folder of images as an image sequence)")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{path}: empty file")
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise VideoError(
                f"{path}: not a readable video (not a video, truncated, or a codec FFmpeg cannot decode; "
                "try re-encoding to H.264 mp4)"
            )
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise VideoError(f"{path}: no frame could be decoded (corrupt or truncated video)")
        self._cap = cap
        self._first = first
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.0 < self.fps < 1000.0):
            log.warning("%s: frame rate unknown, assuming 25 fps", path)
            self.fps = 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self.size = (first.shape[1], first.shape[0])
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _decode(self) -> None:
        cap, frame, index = self._cap, self._first, 0
        try:
            while frame is not None and not self._stop.is_set():
                item = Frame(index, index / self.fps, _bgr_to_rgb(frame))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                index += 1
                ok, frame = cap.read()
                if not ok:
                    frame = None
        except cv2.error as exc:  # a decoder error mid-file ends the source with a reason
            self.error = f"{self.name}: decoding failed at frame {index} ({exc})"
        finally:
            cap.release()
            self._put_end()

    def _put_end(self) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(_END, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise VideoError(f"{self.name}: a file source can be iterated once; open it again")
        self._thread = threading.Thread(target=self._decode, name=f"decode {self.path.name}", daemon=True)
        self._thread.start()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:  # closed from another thread: the decoder stopped without queueing the end
                    if self._stop.is_set() and not self._thread.is_alive():
                        return
                    continue
                if item is _END:
                    break
                self.frames_read += 1
                yield item
        finally:
            self.close()
        expected = self.frame_count
        # FFmpeg's announced count can be off by a frame or two; a larger shortfall means the file is cut short
        if self.error is None and expected and self.frames_read < expected - max(2, expected // 100):
            self.error = (
                f"{self.name}: video ended after {self.frames_read} of {expected} frames (truncated or corrupt file)"
            )
        if self.error:
            log.warning(self.error)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        elif self._thread is None:
            self._cap.release()


def _natural_key(path: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


class ImageSequenceSource(FrameSource):
    """Still images in natural order (``img2.png`` before ``img10.png``) played at ``fps``; an unreadable image ends
    the sequence with ``error`` set."""

    def __init__(self, paths: list[str], fps: float = 25.0, name: str = "") -> None:
        super().__init__()
        if not paths:
            raise VideoError(f"{name or 'image sequence'}: no images found")
        self.paths = paths
        self.fps = float(fps)
        self.frame_count = len(paths)
        self.name = name or os.path.dirname(paths[0])
        from facelens.io.image import decode_image

        self._decode = decode_image
        try:
            first = decode_image(paths[0])
        except FacelensError as exc:
            raise VideoError(f"{self.name}: first image unreadable ({exc})") from exc
        self.size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = self._decode(path)
            except FacelensError as exc:
                self.error = f"{path}: {exc}"
                log.warning(self.error)
                return
            self.frames_read += 1
            yield Frame(index, index / self.fps, image)


class IterableSource(FrameSource):
    """Frames from any iterable of RGB uint8 arrays (or :class:`Frame`); an exception raised by the iterable ends
    the source with ``error`` set instead of propagating, as a dying stream would."""

    def __init__(
        self, frames: Iterable[np.ndarray], fps: float = 25.0, name: str = "frames", live: bool = False
    ) -> None:
        super().__init__()
        self._frames = frames
        self.fps = float(fps)
        self.name = name
        self.live = live

    def __iter__(self) -> Iterator[Frame]:
        iterator = iter(self._frames)
        index = 0
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001  (whatever kills the producer ends the stream with its reason)
                self.error = f"{self.name}: source failed after {index} frames ({exc.__class__.__name__}: {exc})"
                log.warning(self.error)
                return
            if isinstance(item, Frame):
                frame = item
            else:
                image = np.asarray(item)
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                    raise VideoError(
                        f"{self.name}: frames must be HxWx3 uint8 RGB arrays, got {image.dtype} {image.shape}"
                    )
                frame = Frame(index, index / self.fps, image)
            if index == 0:
                self.size = (frame.image.shape[1], frame.image.shape[0])
            index += 1
            self.frames_read += 1
            yield frame


class LiveSource(FrameSource):
    """A camera or network stream read by a background thread into a ring buffer of ``buffer`` frames (the oldest is
    dropped when the consumer is slower than the stream). A read failure reopens the stream with exponential
    back-off (``backoff`` s doubling up to 8 s) for up to ``reconnect`` attempts, after which the source ends with
    ``error`` set. Timestamps are seconds since the first frame (wall clock)."""

    live = True

    def __init__(
        self,
        target: str | int,
        timeout: float = OPEN_TIMEOUT,
        buffer: int = LIVE_BUFFER,
        reconnect: int = 5,
        backoff: float = 0.5,
    ) -> None:
        super().__init__()
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else redact_url(str(target))
        self.timeout = float(timeout)
        self.reconnect = reconnect
        self.backoff = backoff
        self._cap = _open_within(target, self.timeout, self.name)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else 25.0
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._buffer: deque = deque(maxlen=max(1, buffer))
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread: threading.Thread | None = None
        self.reconnects = 0

    def _read_loop(self) -> None:
        index, start = 0, None
        attempts = 0
        try:
            while not self._stop.is_set():
                ok, frame = self._cap.read() if self._cap is not None else (False, None)
                if not ok or frame is None:
                    if self._cap is not None:
                        self._cap.release()
                        self._cap = None
                    if attempts >= self.reconnect:
                        self.error = f"{self.name}: stream stopped and did not come back after {attempts} reconnects"
                        return
                    delay = min(self.backoff * 2**attempts, 8.0)
                    attempts += 1
                    log.warning("%s: stream lost, reconnecting in %.1f s (attempt %d)", self.name, delay, attempts)
                    if self._stop.wait(delay):
                        return
                    try:
                        self._cap = _open_within(self.target, self.timeout, self.name)
                        self.reconnects += 1
                    except VideoError as exc:
                        log.warning("%s", exc)
                    continue
                attempts = 0
                now = time.monotonic()
                start = now if start is None else start
                item = Frame(index, now - start, _bgr_to_rgb(frame))
                index += 1
                with self._ready:
                    if len(self._buffer) == self._buffer.maxlen:
                        self.dropped += 1
                    self._buffer.append(item)
                    self._ready.notify()
        finally:
            if self._cap is not None:
                self._cap.release()
            with self._ready:
                self._done = True
                self._ready.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise VideoError(f"{self.name}: already being read")
        self._thread = threading.Thread(target=self._read_loop, name=f"read {self.name}", daemon=True)
        self._thread.start()
        try:
            while True:
                with self._ready:
                    while not self._buffer and not self._done:
                        self._ready.wait(0.5)
                    if not self._buffer and self._done:
                        break
                    item = self._buffer.popleft()
                self.frames_read += 1
                yield item
        finally:
            self.close()
        if self.error:
            log.warning(self.error)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 1.0)
        elif self._thread is None and self._cap is not None:
            self._cap.release()


def is_stream(source: object) -> bool:
    if isinstance(source, int):
        return True
    text = str(source)
    return text.isdigit() or text.lower().startswith(STREAM_SCHEMES)


def open_source(
    source: str | os.PathLike | int | Iterable[np.ndarray] | FrameSource,
    *,
    fps: float | None = None,
    timeout: float = OPEN_TIMEOUT,
    buffer: int = LIVE_BUFFER,
    reconnect: int = 5,
) -> FrameSource:
    """A frame source for a file, a folder / glob / printf pattern of images, a stream URL, a webcam index or an
    iterable of RGB frames. ``fps`` sets the rate of image sequences and iterables (default 25)."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, os.PathLike, int)) and not isinstance(source, bool):
        if is_stream(source):
            target: str | int = int(source) if str(source).isdigit() else str(source)
            return LiveSource(target, timeout=timeout, buffer=buffer, reconnect=reconnect)
        text = os.fspath(source)
        path = Path(text)
        if path.is_dir():
            files = [str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
            return ImageSequenceSource(sorted(files, key=_natural_key), fps or 25.0, name=text)
        if any(ch in text for ch in "*?["):
            files = [p for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
            return ImageSequenceSource(sorted(files, key=_natural_key), fps or 25.0, name=text)
        if re.search(r"%0?\d*d", text):
            files = _printf_sequence(text)
            return ImageSequenceSource(files, fps or 25.0, name=text)
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.exists():
            return ImageSequenceSource([text], fps or 25.0, name=text)
        return FileSource(path)
    if isinstance(source, Iterable):
        return IterableSource(source, fps or 25.0)
    raise VideoError(f"cannot read video from {type(source).__name__}: give a path, URL, camera index or frames")


def _printf_sequence(pattern: str, max_gap: int = 5) -> list[str]:
    files = []
    start = 0 if os.path.exists(pattern % 0) else 1
    index, misses = start, 0
    while misses <= max_gap:
        path = pattern % index
        if os.path.exists(path):
            files.append(path)
            misses = 0
        elif files:
            misses += 1
        elif index > start + max_gap:
            break
        index += 1
    return files


def read_frames(
    source: str | os.PathLike | int, max_fps: float | None = None, max_seconds: float | None = None, **options
) -> Iterator[Frame]:
    """Frames of a source, sampled to at most ``max_fps`` and stopping after ``max_seconds``. An early end is
    raised as ``VideoError`` only if no frame came at all."""
    src = open_source(source, **options)
    step = max(1, round(src.fps / max_fps)) if max_fps and src.fps and not src.live else 1
    count = 0
    with src:
        for frame in src:
            if max_seconds is not None and frame.time > max_seconds:
                break
            if frame.index % step == 0:
                count += 1
                yield frame
    if count == 0:
        raise VideoError(src.error or f"{src.name}: no readable frames")


class VideoWriter:
    """Writes RGB frames to a video file (MPEG-4 in .mp4, MJPG in .avi) from a background thread, so encoding
    overlaps the next frame's work. ``close`` waits for the queue and reports how many frames were written."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], queue_size: int = 16) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), float(fps or 25.0), size)
        if not self._writer.isOpened():
            raise VideoError(f"{path}: cannot write video here (use a .mp4 or .avi path in a writable folder)")
        self.size = size
        self.frames = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._loop, name=f"write {self.path.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            self._writer.write(item)
            self.frames += 1

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self._queue.put(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    def close(self) -> int:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
            self._writer.release()
        return self.frames

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(path: str | os.PathLike) -> dict[str, float | int]:
    """Frame count (by decoding every frame), fps and size of a video file: for checking written output."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoError(f"{path}: not a readable video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    while cap.grab():
        frames += 1
    cap.release()
    return {"frames": frames, "fps": fps, "width": width, "height": height}
