"""The options and arguments every command shares, defined once so each has one name and one help text everywhere,
and the expansion of image arguments (files, folders, ``@list.txt``, ``-``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from facelens.detect import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS, is_detector  # noqa: F401  (DEFAULT_DETECTOR: the default)
from facelens.distributed.listing import is_remote
from facelens.errors import FacelensError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

INPUTS_HELP = "Images, folders (searched recursively, sorted), @LIST.txt (one path per line) or - (paths on stdin)."

Images = Annotated[list[str], typer.Argument(help=INPUTS_HELP, metavar="INPUTS...")]
JSON_HELP = "JSON lines on stdout: one record per input (or one for the command), errors in the record."
Json = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def known_detector(name: str | None) -> str | None:
    if name is not None and not is_detector(name):
        raise typer.BadParameter(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return name


Detector = Annotated[str, typer.Option("--detector", help=DETECTOR_HELP, callback=known_detector)]


def known_embedder(name: str | None) -> str | None:
    from facelens.embed import EMBEDDERS

    if name is not None and name not in EMBEDDERS:
        raise typer.BadParameter(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
    return name


#: The embedding model of a command that compares or prints vectors without a gallery (one with a gallery uses
#: the gallery's model).
Embedder = Annotated[
    Optional[str],
    typer.Option("--embedder", callback=known_embedder,
                 help="Embedding model (default: sface; dlib_onnx gives face_recognition's vectors)."),
]
Gallery = Annotated[str, typer.Option("--gallery", "-g", help="Gallery folder or postgresql:// URL.")]
NewGalleryEmbedder = Annotated[
    Optional[str],
    typer.Option("--embedder", help="Embedding model of a NEW gallery (default: the default embedder); an existing "
                 "gallery keeps its own and refuses another."),
]


def new_gallery_model(embedder: str | None) -> str | None:
    """The model id a new gallery records for ``--embedder`` (None: the default); an unknown name is a usage
    error."""
    from facelens.embed import MODELS

    if embedder is None:
        return None
    if embedder not in MODELS:
        raise FacelensError(f"unknown embedder {embedder!r}; choose one of {', '.join(MODELS)}")
    return MODELS[embedder].model_id
OptionalGallery = Annotated[
    Optional[str], typer.Option("--gallery", "-g", help="Gallery folder or postgresql:// URL.")
]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection (tenant) in the gallery.")]
Where = Annotated[
    Optional[list[str]],
    typer.Option("--where", help="Only people whose metadata has KEY=VALUE (repeat a key for any of its values)."),
]
Liveness = Annotated[bool, typer.Option("--liveness", help="Score liveness per face; a spoof is never named.")]
Analyze = Annotated[bool, typer.Option("--analyze", help="Add expression, age/gender and quality per face.")]
Adapt = Annotated[
    Optional[str],
    typer.Option("--adapt", help="Adapt the expression head to each subject at test time, without labels: balanced "
                 "(FER+'s class prior dropped; best on posed sets), shot, cache, t3a or tent (facelens.analyze.adapt); the unadapted answer stays beside the adapted one.",
                 metavar="METHOD"),
]
AdaptGroup = Annotated[
    str,
    typer.Option("--group-by", help="Who one subject of --adapt is: folder (each folder of one person's images), "
                 "image, or all (every input one person)."),
]
Workers = Annotated[int, typer.Option("--workers", help="Processes for decoding and detection (0 = one per core).")]
Fpir = Annotated[
    float, typer.Option("--fpir", help="Target rate of strangers given a name (sets the threshold by gallery size).")
]
Threshold = Annotated[Optional[float], typer.Option("--threshold", help="Fixed cosine similarity threshold.")]
Output = Annotated[
    Optional[Path],
    typer.Option("--output", help="Also write the results to FILE: .parquet (a row per face, exact embeddings) or .jsonl."),
]
RAY_HELP = ("Run on Ray: a cluster ADDRESS (ray://HOST:10001 or HOST:6379) or auto (the running cluster, else a "
            "local one on this machine's cores). Needs pip install 'facelens[ray]'.")
Ray = Annotated[Optional[str], typer.Option("--ray", help=RAY_HELP, metavar="ADDRESS|auto")]


def ray_runner(address: str | None, workers: int = 0) -> Any:
    """The Ray runner for ``--ray`` (None without it); connects now, so a missing extra or an unreachable
    cluster is a usage error before any image is read."""
    if address is None:
        return None
    from facelens.distributed import require_ray

    require_ray()
    from facelens.distributed.runner import RayRunner

    runner = RayRunner(address=address, workers=workers or None)
    runner.start()
    return runner


def ray_summary(runner: Any) -> None:
    """The run's figures on stderr (images, faces, failures, images/s) after a ``--ray`` run."""
    if runner is not None:
        from facelens.cli.output import err

        err.print(f"ray: {runner.stats.line()}", markup=False, highlight=False)

def expand_inputs(items: list[str]) -> list[str]:
    """Paths in argument order: a file as given, a folder's images (recursively, sorted), the lines of
    ``@LIST.txt``, and ``-`` for paths read from stdin. An unreadable list file is a usage error."""
    paths: list[str] = []
    for item in items:
        if item == "-":
            paths += _lines(sys.stdin.read().splitlines())
        elif item.startswith("@") and len(item) > 1:
            try:
                text = Path(item[1:]).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise FacelensError(f"cannot read the file list {item[1:]}: {exc.__class__.__name__}") from None
            paths += [str(p) for p in _folders(_lines(text.splitlines()))]
        else:
            paths += _folders([item])
    return paths


def _lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _folders(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        path = Path(item)
        if is_remote(item):  # an object-store prefix: its images, listed through pyarrow.fs
            from facelens.distributed.listing import list_remote

            out += list_remote(item, IMAGE_SUFFIXES)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            out += [str(p) for p in found] if found else [item]  # an empty folder fails as an input
        else:
            out.append(item)
    return out


def parse_pairs(items: Optional[list[str]], option: str) -> dict[str, Any] | None:
    """``KEY=VALUE`` items (repeat a key for a list of values); values are JSON when they parse, else strings."""
    from facelens.gallery.base import parse_key_values

    return parse_key_values(items, option)


def parse_where(items: Optional[list[str]]) -> dict[str, Any] | None:
    """``--where KEY=VALUE`` filters (repeat a key for "any of")."""
    return parse_pairs(items, "--where")
