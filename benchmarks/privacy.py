"""What anonymisation leaks, per method and strength, side by side with deface (PyPI 1.5.0), in one run.

    python benchmarks/privacy.py [--data ../shared/data] [--limit N] [--no-video] [--deface-path DIR]

Images: the LFW View-1 DevTest images (1,549). Each original is detected and embedded once; each method/strength
covers the originals' faces (what ``facelens anonymize`` does to an image) and ``evaluate.anonymization`` measures
re-identification by facelens' own recogniser (rank 1 among all originals' faces, identity = LFW person; and at the
default verification threshold), faces left visible (a detection on the anonymised image over an original face),
and images/s of covering alone. deface: its CenterFace detection at its defaults (threshold 0.2, mask scale 1.3,
elliptical box blur) on the same images, its images/s including its detection.

Videos: both shared clips (data/video), ``facelens anonymize`` at the default method and strength, and deface's own
command line, each timed end to end (decode, detect, cover, encode, audio); then ``eval anonymization`` counts the
frames where a tracked face of the original was left visible or re-identified.

deface is not a dependency: install it into a folder of its own (``pip install --target DIR deface==1.5.0``) and
pass ``--deface-path DIR``. Timings on a shared machine drift: compare within one run.

Measured 2026-12-02 on the 2-core shared machine (load average 20-28, so absolute speeds are low; ratios are
within one run), ``--limit 400`` (430 faces; the images' person is its largest face), margin 0.25, dlib HOG + ResNet:

    anonymiser                  rank 1   named@thr  verified-own  visible   images/s
    solid 1.0                   0.25 %   0.47 %     0.93 %        0         (covering only)
    blur 0.1 *                  1.51 %   -          14.9 %        7.7 %
    blur 0.2                    0.50 %   0.70 %     1.16 %        0
    blur 0.3 (default)          0.25 %   0.47 %     0.93 %        0
    pixelate 0.35 (default)     0.25 %   0.70 %     1.86 %        0
    pixelate 0.5                0.50 %   0.93 %     1.16 %        0
    mask 0.25 (default)         0.50 %   0.70 %     0.93 %        0
    facelens blur 0.25, whole   0.25 %   0.47 %     0.93 %        0         28.7  (engine, 2 workers)
    deface 1.5.0 defaults       0.25 %   0.47 %     0.70 %        0          9.5  (its CenterFace included)
    (* an earlier run of the same images; "verified-own" then counted any photo of the person)

    video (every frame of the original tracked)   face-frames  re-identified  frames leaked  frames/s
    facelens blur, short_hamilton_clip.mp4         182          0              0 / 275        1.6
    deface, short_hamilton_clip.mp4                182          0.55 %         1 / 275        0.9
    facelens blur, facenet_pytorch video.mp4       224          0              0 / 105        0.9
    deface, facenet_pytorch video.mp4              224          0.89 %         2 / 105        0.2

Commands: ``python benchmarks/privacy.py --limit 400 --no-video --grid '{"solid": [1.0], "blur": [0.2, 0.3],
"pixelate": [0.35, 0.5], "mask": [0.25]}' --whole blur --deface-path DIR`` and ``python benchmarks/privacy.py
--no-images --deface-path DIR``. The leak measure's faces are those facelens' own detector finds in the original
(HOG misses the small audience faces of the Hamilton clip, for both tools' scores alike).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("FACELENS_MODEL_DIR", str(ROOT.parent / "shared" / "models"))

GRID = {"blur": [0.05, 0.1, 0.2, 0.3], "pixelate": [0.1, 0.2, 0.3], "mask": [0.1, 0.2, 0.3], "solid": [1.0]}


def deface_images(images: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """deface's defaults on RGB images (its CenterFace, threshold 0.2, mask scale 1.3, ellipse blur)."""
    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame

    centerface = CenterFace(in_shape=None, backend="auto")
    out = []
    start = time.perf_counter()
    for image in images:
        frame = image.copy()
        dets, _ = centerface(frame, threshold=0.2)
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True, draw_scores=False,
                        replaceimg=None, mosaicsize=20)
        out.append(frame)
    return out, len(images) / (time.perf_counter() - start)


def row(label: str, report, speed: float) -> dict:
    data = report.to_dict()
    return {"anonymiser": label, "faces": data["faces"], "reid_rank1": data["rank1_rate"],
            "reid_threshold": data["threshold_rate"], "verified_own": data["verified_own_rate"],
            "visible": data["visible_rate"],
            **({"frames": data["frames"], "frames_leaked": data["frames_leaked"]} if "frames" in data else {}),
            "per_s": round(speed, 1)}


def show(rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" | ".join(f"{str(r.get(c, '')):>14}" for c in cols), flush=True)


def images_part(data: Path, limit: int | None, with_deface: bool, grid: dict, whole: list[str],
                margin: float | None = None) -> list[dict]:
    from facelens.evaluate.anonymization import evaluate_images, original_results
    from facelens.evaluate.protocols import read_pairs
    from facelens.io.image import decode_image
    from facelens.privacy import Cover

    lfw = data / "identity" / "lfw"
    paths = read_pairs(lfw / "pairsDevTest.txt", lfw / "lfw_deepfunneled").images()[:limit]
    identities = [Path(p).parent.name for p in paths]
    images = [decode_image(p) for p in paths]
    done = original_results(images)
    boxes = [np.asarray(r.faces.box, np.float32).reshape(-1, 4) for r in done]
    rows = []
    for method, strengths in grid.items():
        for strength in strengths:
            cover = Cover(method, strength) if margin is None else Cover(method, strength, margin)
            start = time.perf_counter()
            covered = [cover.apply(image.copy(), b) for image, b in zip(images, boxes)]
            speed = len(images) / (time.perf_counter() - start)
            report = evaluate_images(images, covered, identities, originals_done=done)
            rows.append(row(f"{method} {strength} margin {cover.margin}", report, speed))
            show(rows[-1:]) if len(rows) > 1 else show(rows)
    if with_deface:
        covered, speed = deface_images(images)
        rows.append(row("deface 1.5.0", evaluate_images(images, covered, identities, originals_done=done), speed))
        show(rows[-1:])
    from facelens.privacy import DEFAULT_STRENGTH, Anonymizer

    for method in whole:  # the whole door: detection through the engine, then covering
        start = time.perf_counter()
        covered = [o.image for o in Anonymizer(Cover(method)).images(images)]
        speed = len(images) / (time.perf_counter() - start)
        report = evaluate_images(images, covered, identities, originals_done=done)
        rows.append(row(f"facelens {method} {DEFAULT_STRENGTH[method]} (with detection)", report, speed))
        show(rows[-1:])
    return rows


def videos_part(data: Path, work: Path, deface_path: str | None) -> list[dict]:
    from facelens.evaluate.anonymization import evaluate_video
    from facelens.privacy import anonymize

    rows = []
    for clip in (data / "video" / "face_recognition" / "short_hamilton_clip.mp4",
                 data / "video" / "facenet_pytorch" / "video.mp4"):
        out = work / f"facelens_{clip.name}"
        start = time.perf_counter()
        outcome = anonymize(clip, out)
        speed = outcome.frames / (time.perf_counter() - start)
        rows.append(row(f"facelens {clip.name}", evaluate_video(clip, out), speed))
        show(rows[-1:])
        if deface_path:
            out = work / f"deface_{clip.name}"
            env = {**os.environ, "PYTHONPATH": deface_path}
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "deface.deface", str(clip), "-o", str(out), "--keep-audio"],
                           check=True, env=env, capture_output=True)
            from facelens.io.video import probe

            speed = probe(out)["frames"] / (time.perf_counter() - start)
            rows.append(row(f"deface {clip.name}", evaluate_video(clip, out), speed))
            show(rows[-1:])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--limit", type=int, default=None, help="First N DevTest images only.")
    parser.add_argument("--no-images", action="store_true")
    parser.add_argument("--grid", type=json.loads, default=GRID, help='Methods and strengths, JSON: {"blur": [0.2]}.')
    parser.add_argument("--margin", type=float, default=None, help="Margin for the grid (default: the default).")
    parser.add_argument("--whole", default="blur,pixelate,mask",
                        help="Methods run through the whole door (detection included) at their default strength.")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--deface-path", default=None, help="Folder deface 1.5.0 is installed in (pip --target).")
    parser.add_argument("--work", type=Path, default=Path("/tmp/facelens-privacy-bench"))
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    args = parser.parse_args()
    if args.deface_path:
        sys.path.append(args.deface_path)  # after our own site-packages: only deface and what we lack come from it
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    if not args.no_images:
        rows += images_part(args.data, args.limit, bool(args.deface_path), args.grid,
                            [m for m in args.whole.split(",") if m], args.margin)
    if not args.no_video:
        rows += videos_part(args.data, args.work, args.deface_path)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
