"""Liveness throughput: faces/s of each passive model and of recognition with and without the liveness check.

For each detector (hog, cnn, yunet): recognition alone = detect + embed (dlib ResNet) per image; with liveness =
the same plus ``LivenessChecker.check_many`` (default: MiniFASNet ensemble). Prints faces/s and the overhead
ratio (with / without), as the issue asks. Also the passive models on their own (crops from given boxes) and the
frequency features. Data: spoof/dtruong46me_fas_crops (336×336 face crops).

    python benchmarks/liveness.py [--images 60] [--detectors hog,yunet,cnn] [--cnn-images 8]

``--blinks`` instead compares the active check's blink signals (``ear``, ``blendshapes``) on clips with annotated
blinks: hits (a found blink within ±2 frames of an annotated closure's first and last frame), misses, false blinks
(found where no closure is annotated), and ms per frame of each signal (the signal alone, on the frames' faces).

The shared videos have no usable blink (looked at frame by frame: short_hamilton_clip.mp4's faces keep their eyes
open in every shot where eyelids can be seen; facenet-pytorch's crowd faces look down and are too blurred to tell a
blink), so they count false blinks only. The blink clips are spliced from real LFW photos: for each of the people
in :data:`BLINK_PAIRS`, a photo with both eyes open and one with both eyes closed, each checked by eye (candidates
were the photos where either signal saw closed eyes, so neither signal chose the set), in the sequence open ×12,
closed ×4, open ×12, closed ×3, open ×10 at 25 fps: two blinks of 160 and 120 ms per clip. Each open photo made
into a 25-frame still clip adds false-blink chances. A spliced closure is a hard cut, with no half-closed frames.

    python benchmarks/liveness.py --blinks

Measured 2026-12-02 (hog detector, each signal with the same ratios, drop 2/3 and reopen 0.85 of the open level):

    signal        hits / misses / false   ms per frame (signal alone; 2 shared cores, alternating order)
    ear           12 / 14 / 0             5.7  (x1.00)
    blendshapes   16 / 10 / 0             11.8 (x2.08)
    eye_state     17 /  9 / 2             7.2  (x1.27)

6 of the 26 blinks fall where the face tracker did not link the splice (a miss for every signal), so of the 20
followed ones EAR finds 12, blendshapes 16 and the eye-state model 17, with a false blink on the Hamilton clip at
6.77 s (frames 203-204, eyes open) and one on the Mike Price clip. Blendshapes is the default: the most hits with
no false blink. EAR's misses are closures that leave its landmarks half open (Gary Winnick, Kim Yong-il,
Abdullatif Sener: EAR 0.22-0.24 closed against 0.26-0.29 open); blendshapes miss the squinting closures (Bill
McBride, Jimmy Carter: eyeBlink 0.2-0.4). A sweep of (drop, reopen) over 0.6-0.85 / 0.85-0.9 on this same set
changes no ranking: EAR 11-16 hits (16 only with 3 false), blendshapes 16-20 with none.

Through the video door (``process_video(clip, liveness=True, blink_signal=...)``, whose tracker links more of the
splices; blinks on any other track count as false): ear 17 / 9 / 0, blendshapes 20 / 6 / 0, eye_state 21 / 5 / 2.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("FACELENS_MODEL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "models"))
os.environ.setdefault("FACELENS_OFFLINE", "1")


def _timed(fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


#: (open photo, closed photo) of one LFW person each; both eyes closed in the second, open in the first (by eye).
BLINK_PAIRS = (
    ("Bill_McBride_0003", "Bill_McBride_0007"),
    ("Barbara_Brezigar_0002", "Barbara_Brezigar_0001"),
    ("Denise_Johnson_0001", "Denise_Johnson_0002"),
    ("Gary_Winnick_0001", "Gary_Winnick_0002"),
    ("Amanda_Bynes_0002", "Amanda_Bynes_0003"),
    ("Matthew_Broderick_0003", "Matthew_Broderick_0002"),
    ("Kim_Yong-il_0001", "Kim_Yong-il_0002"),
    ("Abdullatif_Sener_0002", "Abdullatif_Sener_0001"),
    ("Mike_Price_0002", "Mike_Price_0001"),
    ("Jiang_Zemin_0009", "Jiang_Zemin_0010"),
    ("Muhammad_Ali_0005", "Muhammad_Ali_0010"),
    ("Jimmy_Carter_0009", "Jimmy_Carter_0004"),
    ("Gerhard_Schroeder_0005", "Gerhard_Schroeder_0026"),
)
#: The spliced clip: (photo, frames) runs; the closed runs are the annotated blinks.
BLINK_SEQUENCE = (("open", 12), ("closed", 4), ("open", 12), ("closed", 3), ("open", 10))


def splice(frames_by_name: dict, sequence=BLINK_SEQUENCE) -> tuple[list, list[tuple[int, int]]]:
    """The spliced frames (BGR) and the annotated closures as (first, last) frame."""
    frames, closures = [], []
    for name, count in sequence:
        if name == "closed":
            closures.append((len(frames), len(frames) + count - 1))
        frames += [frames_by_name[name]] * count
    return frames, closures


def write_clip(path: Path, frames: list, fps: int = 25) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def score_blinks(found: list[dict], closures: list[tuple[int, int]], tolerance: int = 2) -> tuple[int, int, int]:
    """(hits, misses, false blinks): a found blink hits the first unmatched closure whose first and last frames are
    both within ``tolerance`` frames of its own."""
    left, hits = list(closures), 0
    for b in found:
        match = next((c for c in left if abs(b["start_frame"] - c[0]) <= tolerance
                      and abs(b["end_frame"] - c[1]) <= tolerance), None)  # fmt: skip
        if match is not None:
            left.remove(match)
            hits += 1
    return hits, len(left), len(found) - hits


def blink_comparison(data: Path) -> None:
    import tempfile

    import cv2
    from facelens.engine import models
    from facelens.liveness.active import SIGNALS, check_clip, eye_openness, read_frames

    lfw = data / "identity" / "lfw" / "lfw_deepfunneled"
    clips: list[tuple[str, Path, list]] = []  # (name, clip, annotated closures)
    tmp = Path(tempfile.mkdtemp(prefix="facelens-blinks-"))
    for open_name, closed_name in BLINK_PAIRS:
        person = open_name.rsplit("_", 1)[0]
        photos = {k: cv2.imread(str(lfw / person / f"{n}.jpg")) for k, n in (("open", open_name), ("closed", closed_name))}
        frames, closures = splice(photos)
        clips.append((f"{person} blinks", write_clip(tmp / f"{person}.mp4", frames), closures))
        clips.append((f"{person} still", write_clip(tmp / f"{person}_still.mp4", [photos["open"]] * 25), []))
    clips.append(("short_hamilton_clip", data / "video" / "face_recognition" / "short_hamilton_clip.mp4", []))
    totals = {s: [0, 0, 0] for s in SIGNALS}
    unfollowed = 0  # annotated closures in which the main face was not followed (the same for every signal)
    print(f"{'clip':32s} " + " ".join(f"{s + ' hit/miss/false':>26s}" for s in SIGNALS))
    for name, clip, closures in clips:
        cells = []
        for signal in SIGNALS:
            result = check_clip(clip, signal=signal)
            if signal == SIGNALS[0]:
                seen = {f for f, v in zip(result.series["frame"], result.series["openness"]) if v is not None}
                unfollowed += sum(1 for a, b in closures if not set(range(a, b + 1)) <= seen)
            scored = score_blinks(result.blinks, closures)
            totals[signal] = [a + b for a, b in zip(totals[signal], scored)]
            cells.append(f"{'%d/%d/%d' % scored:>26s}")
        print(f"{name:32s} " + " ".join(cells))
    print(f"{'total':32s} " + " ".join(f"{'%d/%d/%d' % tuple(totals[s]):>26s}" for s in SIGNALS))
    print(f"{unfollowed} of {sum(len(c) for _, _, c in clips)} annotated blinks fall where the main face was not "
          "followed (a splice the face tracker did not link): a miss for every signal")
    # the same clips through the video door: blinks of each track, counted on the longest track
    from facelens.video import process_video

    totals = {s: [0, 0, 0] for s in SIGNALS}
    print("video door (process_video, liveness=True), longest track:")
    for name, clip, closures in clips:
        for signal in SIGNALS:
            tracks = process_video(clip, liveness=True, blink_signal=signal).run().tracks
            found = max(tracks, key=lambda t: t.frames).blinks["blinks"] if tracks else []
            extra = sum(t.blinks["count"] for t in tracks) - len(found)  # blinks on other tracks are false too
            hits, misses, false = score_blinks(found, closures)
            totals[signal] = [a + b for a, b in zip(totals[signal], (hits, misses, false + extra))]
    print(f"{'total':32s} " + " ".join(f"{'%d/%d/%d' % tuple(totals[s]):>26s}" for s in SIGNALS))
    # ms per frame of each signal alone, on the faces the detector found, alternating the order
    det = models().detector
    sample = [(img, det.detect(img)) for _, _, img in read_frames(clips[0][1])]
    sample = [(img, f[:1]) for img, f in sample if f]
    seconds = {s: 0.0 for s in SIGNALS}
    for s in SIGNALS:
        eye_openness(s, *sample[0])  # load
    for round_ in range(4):
        for s in SIGNALS if round_ % 2 == 0 else SIGNALS[::-1]:
            start = time.perf_counter()
            for img, faces in sample:
                eye_openness(s, img, faces)
            seconds[s] += time.perf_counter() - start
    n = 4 * len(sample)
    base = seconds["ear"] / n
    print(" · ".join(f"{s} {1000 * seconds[s] / n:.2f} ms/frame (x{seconds[s] / n / base:.2f} of ear)" for s in SIGNALS)
          + f" ({len(sample)} frames x 4, {os.cpu_count()} CPU(s), a shared machine)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data",
        default=str(Path(os.environ["FACELENS_MODEL_DIR"]).parent / "data" / "spoof" / "dtruong46me_fas_crops"),
    )
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument(
        "--detectors", default="hog,yunet", help="add cnn for dlib MMOD (slow on CPU: see --cnn-images)"
    )
    parser.add_argument("--cnn-images", type=int, default=8)
    parser.add_argument("--blinks", action="store_true", help="compare the active check's blink signals instead")
    args = parser.parse_args()
    if args.blinks:
        blink_comparison(Path(os.environ["FACELENS_MODEL_DIR"]).parent / "data")
        return

    from facelens.io.image import decode_image
    from facelens.liveness.checker import LivenessChecker
    from facelens.liveness.dataset import labelled_images
    from facelens.liveness.frequency import feature_matrix
    from facelens.engine import models

    paths = [p for p, _ in labelled_images(args.data)]
    step = max(1, len(paths) // args.images)
    images = [decode_image(p) for p in paths[::step][: args.images]]
    checkers = {name: LivenessChecker(name) for name in ("minifasnet", "minifas_celeba128")}

    print(f"{len(images)} images from {args.data}; {os.cpu_count()} CPU(s)")
    base = models(detector="hog")
    faces = [(img, base.detector.detect(img)) for img in images]
    faces = [(img, f) for img, f in faces if f]
    n = sum(len(f) for _, f in faces)
    for name, checker in checkers.items():
        checker.check_many(*faces[0])  # load
        t = _timed(lambda c=checker: [c.check_many(img, f) for img, f in faces])
        print(f"passive {name:18s}: {n / t:8.1f} faces/s ({1000 * t / n:.2f} ms/face)")
    t = _timed(lambda: [feature_matrix(img, [d.box for d in f]) for img, f in faces])
    print(f"frequency features        : {n / t:8.1f} faces/s ({1000 * t / n:.2f} ms/face)")

    checker = checkers["minifasnet"]
    for det in args.detectors.split(","):
        pipe = models(detector=det)
        pipe.embedder.embed(images[0], pipe.detector.detect(images[0]))  # load models
        subset = images[: args.cnn_images] if det == "cnn" else images
        count = 0

        def recognition(with_liveness: bool, pipe=pipe, subset=subset) -> None:
            nonlocal count
            count = 0
            for img in subset:
                dets = pipe.detector.detect(img)
                pipe.embedder.embed(img, dets)
                if with_liveness:
                    checker.check_many(img, dets)
                count += len(dets)

        t_rec = _timed(lambda: recognition(False))
        t_live = _timed(lambda: recognition(True))
        print(
            f"{det:5s}: recognition {count / t_rec:7.1f} faces/s, + liveness {count / t_live:7.1f} faces/s, "
            f"overhead x{t_live / t_rec:.3f} ({1000 * (t_live - t_rec) / max(count, 1):.2f} ms/face)"
        )


if __name__ == "__main__":
    main()
