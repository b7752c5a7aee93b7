"""A re-run skips what is done: before an enrolment dispatches its images (to Ray or to the local pool), the ones
the gallery already holds for that person are set aside, so an interrupted archive enrolment resumes where it
stopped instead of detecting and embedding everything again.

"Already holds" means what the enrolment's own duplicate check means: a face of that person whose content hash
(:func:`facelens.gallery.base.content_hash`, a hash of the decoded pixels) is the image's. Hashing needs the pixels,
so only the images that can be done are decoded here: those whose name (path, URI or given source label) is already
the source of one of that person's faces. A first run (nobody in the gallery yet) decodes nothing here; a full re-run
decodes each image once (on the driver, in threads) and runs no detector or embedder. An image whose photo was
enrolled under another path is not caught here; the enrolment's check after embedding still refuses it, as before.
Images that had no face leave nothing in the gallery, so they are computed again on a re-run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from facelens.errors import NotFoundError

#: The skip reason of an image already enrolled for its person (the enrolment's own duplicate check says the same).
ALREADY_ENROLLED = "already enrolled (same image)"


def _hash_of(source: Any, max_pixels: int | None) -> str | None:
    """The content hash of one input as a worker would compute it (None: unreadable; the run will say why)."""
    from facelens.distributed.listing import is_remote, read_remote
    from facelens.gallery.base import content_hash
    from facelens.io.image import decode_image

    try:
        data = read_remote(source) if is_remote(source) else source
        return content_hash(decode_image(data, max_pixels=max_pixels))
    except Exception:  # noqa: BLE001  (an unreadable input is not done: it goes to the run, which reports it)
        return None


def already_enrolled(store: Any, names: Sequence[str], sources: Sequence[Any], labels: Sequence[str],
                     max_pixels: int | None = None, threads: int | None = None) -> dict[int, str]:
    """Index -> skip reason for the inputs (``names[i]`` enrolling ``sources[i]``, named ``labels[i]``) that
    ``store`` already holds for their person."""
    known: dict[str, dict[str, set[str]]] = {}  # person -> face source -> content hashes
    candidates: list[int] = []
    for index, (name, label) in enumerate(zip(names, labels)):
        if name not in known:
            known[name] = {}
            try:
                faces = store.faces(name=name)
            except NotFoundError:  # not enrolled yet: nothing of theirs is done
                faces = []
            for face in faces:
                if face.content_hash:
                    known[name].setdefault(face.source, set()).add(face.content_hash)
        if label in known[name] and not hasattr(sources[index], "read"):  # a stream is not read twice
            candidates.append(index)
    if not candidates:
        return {}
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # decoders release the GIL
        digests = list(pool.map(lambda i: _hash_of(sources[i], max_pixels), candidates))
    held = {name: set().union(*by_source.values()) for name, by_source in known.items() if by_source}
    return {index: ALREADY_ENROLLED for index, digest in zip(candidates, digests)
            if digest is not None and digest in held[names[index]]}


__all__ = ["ALREADY_ENROLLED", "already_enrolled"]
