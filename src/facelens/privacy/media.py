"""Writing anonymised output with nothing of the original's metadata: images re-encoded from pixels (no EXIF, GPS,
XMP, ICC or text chunks), videos re-encoded with the original audio stream copied packet for packet (PyAV).

PyAV (``pip install 'facelens[av]'``, the FFmpeg libraries in a wheel) is optional: without it a video is written by
OpenCV, which cannot carry audio, so keeping the audio then fails with a message that says what to install (or to
pass ``audio=False`` / ``--no-audio``). No ffmpeg executable is needed.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facelens.errors import FacelensError, VideoError

log = logging.getLogger(__name__)

AV_MISSING = "keeping a video's audio needs PyAV: pip install 'facelens[av]' (or pass --no-audio to drop the audio)"


def have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def save_clean_image(image: np.ndarray, path: str | os.PathLike, quality: int = 95) -> None:
    """Write pixels only: a new image object carries no EXIF, XMP, ICC profile or PNG text from the original
    (orientation was applied to the pixels when decoding)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(np.ascontiguousarray(image))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(path, format="JPEG", quality=quality, exif=b"")
    else:
        picture.save(path)


def audio_stream_count(path: str | os.PathLike) -> int:
    """Audio streams in a media file (0 when PyAV is missing or the file has none)."""
    if not have_av():
        return 0
    import av

    try:
        with av.open(str(path)) as container:
            return len(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return 0


class AvVideoWriter:
    """H.264 (MPEG-4 Part 2 in .avi) video from RGB frames, with the audio of ``audio_from`` copied in unchanged and
    interleaved by time as the video is written. The container gets no metadata of the original."""

    def __init__(
        self, path: str | os.PathLike, fps: float, size: tuple[int, int], audio_from: str | os.PathLike | None = None,
        crf: int = 18,
    ) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self.audio_packets = 0
        self.size = (size[0] - size[0] % 2, size[1] - size[1] % 2)  # yuv420p needs even sides
        rate = Fraction(float(fps or 25.0)).limit_denominator(1001)
        try:
            self._out = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"{path}: cannot write video here ({exc})") from exc
        codec = "mpeg4" if self.path.suffix.lower() == ".avi" else "libx264"
        self._video = self._out.add_stream(codec, rate=rate)
        self._video.width, self._video.height = self.size
        self._video.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._video.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            self._video.bit_rate = 8_000_000
        self._video_tb = Fraction(1, 1) / rate
        self._audio_in: Any = None
        self._audio_packets: Any = None
        self._pending: Any = None
        if audio_from is not None:
            source = av.open(str(audio_from))
            if source.streams.audio:
                self._audio_in = source
                in_stream = source.streams.audio[0]
                self._audio = self._out.add_stream_from_template(in_stream)
                self._audio_packets = source.demux(in_stream)
            else:
                source.close()

    @property
    def has_audio(self) -> bool:
        return self._audio_in is not None

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy the original's audio packets up to ``seconds`` (all of them when None)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending
            if packet is None:
                packet = next(self._audio_packets, None)
                if packet is None:
                    self._audio_packets = None
                    return
                if packet.dts is None:  # the demuxer's flush packet
                    continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._pending = None
            packet.stream = self._audio
            self._out.mux(packet)
            self.audio_packets += 1

    def write(self, image: np.ndarray) -> None:
        import av

        if (image.shape[1], image.shape[0]) != self.size:
            image = image[: self.size[1], : self.size[0]]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self.frames
        frame.time_base = self._video_tb
        self._mux_audio_until(float(self.frames * self._video_tb))
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def close(self) -> int:
        if self._out is None:
            return self.frames
        for packet in self._video.encode():
            self._out.mux(packet)
        self._mux_audio_until(None)
        self._out.close()
        self._out = None
        if self._audio_in is not None:
            self._audio_in.close()
        return self.frames

    def __enter__(self) -> AvVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int], audio_from: str | None, audio: bool) -> Any:
    """The writer for an anonymised video: PyAV when installed (audio copied from ``audio_from`` when ``audio``),
    else OpenCV (no audio: refused when the audio was asked for and there is a file to take it from)."""
    if have_av():
        return AvVideoWriter(path, fps, size, audio_from=audio_from if audio else None)
    if audio and audio_from is not None:
        raise FacelensError(AV_MISSING)
    from facelens.io.video import VideoWriter

    return VideoWriter(path, fps, size)
