"""A live MJPEG-over-HTTP stream served from this process: stale frames are dropped for a slow reader, a stream
that goes away is retried and then ends with a reason, and ``process_video`` still returns the timeline so far."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import pytest
from helpers import need_data

from facelens.io.video import LiveSource, open_source
from facelens.video import process_video

LIN = "lin-manuel-miranda"

HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")


class _OneShotStream:
    """Serves the clip's first ``frames`` frames as multipart JPEG at ``fps`` to the first client, then shuts down
    (so reconnecting fails, as with a camera that died)."""

    def __init__(self, frames: int, fps: float = 30.0) -> None:
        cap = cv2.VideoCapture(str(need_data(*HAMILTON)))
        self.jpegs = [cv2.imencode(".jpg", cap.read()[1])[1].tobytes() for _ in range(frames)]
        cap.release()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for jpeg in owner.jpegs:
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                        self.wfile.write(head + jpeg + b"\r\n")
                        time.sleep(1.0 / fps)
                except OSError:
                    pass
                threading.Thread(target=owner.stop, daemon=True).start()

            def log_message(self, *args) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/live.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stream():
    server = _OneShotStream(frames=40)
    yield server
    try:
        server.stop()
    except OSError:
        pass


def test_video_live_drops_stale_frames_and_ends_with_reason(stream):
    src = open_source(stream.url, timeout=3, reconnect=1)
    assert isinstance(src, LiveSource) and src.live and src.size == (640, 360)
    started = time.monotonic()
    indices = []
    for frame in src:
        indices.append(frame.index)
        time.sleep(0.08)  # a consumer at ~12 fps behind a 30 fps stream
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert src.dropped > 0 and indices[-1] - indices[0] + 1 > len(indices)  # stale frames were skipped
    assert src.error is not None and "did not come back" in src.error
    assert time.monotonic() - started < 15


def test_video_live_stream_dies_timeline_up_to_then(stream, lin_gallery):
    run = process_video(stream.url, lin_gallery, timeout=3, reconnect=1)
    results = list(run)
    timeline = run.timeline
    assert results and timeline.frames == len(results)
    assert not timeline.complete and timeline.error
    assert "lin-manuel-miranda" in timeline.names  # he is on stage in the stream's first 20 frames
    assert [e["event"] for e in run.events].count("appear") == len(timeline.tracks)


def test_video_live_new_face_is_confirmed_on_the_next_frame(lin_gallery):
    """On a live source (frames get dropped) a face that just appeared is detected again on the next frame, so
    that it is confirmed (it needs two detections) before it may be gone, instead of k frames later."""
    from facelens.io.video import IterableSource

    def frames():
        cap = cv2.VideoCapture(str(need_data(*HAMILTON)))
        for _ in range(12):
            yield cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
        cap.release()

    results = list(process_video(IterableSource(frames(), fps=29.97, live=True), lin_gallery))
    seen = [(r.index, r.detected, len(r.faces)) for r in results]
    start = next(e["frame"] for r in results for e in r.events if e["event"] == "appear")  # his first detection
    assert results[start].detected and results[start + 1].detected, seen  # ... and the next frame looked again
    assert LIN in {f.person for r in results for f in r.faces}
