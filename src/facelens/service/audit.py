"""Audit log: one JSON line per enrol/delete/identify (who = key id, when, action, gallery, person, outcome).

Probe images are not kept unless ``Settings.audit_images`` names a folder; then the record names the file.
Erasing a person (:meth:`AuditLog.erase`) deletes the probe images of the records about them and leaves those
records without the name; the erasure itself is logged as a fact, without the name.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("facelens.audit")


class AuditLog:
    def __init__(self, path: Path | None, images_dir: str | Path | None = None) -> None:
        self.path = path
        self.images_dir = Path(images_dir).expanduser() if images_dir else None
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.images_dir is not None:
            self.images_dir.mkdir(parents=True, exist_ok=True)

    def keep_image(self, data: bytes, extension: str) -> str | None:
        """Store a probe image when the settings ask for it; returns its file name (None when not kept)."""
        if self.images_dir is None:
            return None
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.{extension}"
        (self.images_dir / name).write_bytes(data)
        return name

    def record(self, who: str, action: str, gallery: str | None = None, person: str | None = None,
               **fields: Any) -> dict[str, Any]:
        entry = {"time": round(time.time(), 3), "who": who, "action": action, "gallery": gallery, "person": person}
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, default=str)
        log.info("%s", line)
        if self.path is not None:
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return entry

    def erase(self, who: str, gallery: str | None, person: str, **fields: Any) -> dict[str, Any]:
        """Forget ``person`` of ``gallery``: the probe images of every record naming them are deleted, the name is
        taken out of those records (the file is rewritten, atomically), and one ``erase_person`` record says that an
        erasure happened (by whom, when, how much) without saying of whom."""
        scrubbed = images = 0
        if self.path is not None and self.path.is_file():
            with self._lock:
                kept = []
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        kept.append(line)
                        continue
                    if _about(entry, gallery, person):
                        scrubbed += 1
                        images += self._drop_images(entry)
                        entry = _without(entry, person)
                        line = json.dumps(entry, default=str)
                    kept.append(line)
                tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
                tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
                os.replace(tmp, self.path)
        return self.record(who, "erase_person", gallery, None, records_scrubbed=scrubbed, images_deleted=images,
                           **fields)

    def _drop_images(self, entry: dict[str, Any]) -> int:
        names = [entry.pop("image", None), *(entry.pop("images", None) or [])]
        gone = 0
        for name in filter(None, names):
            if self.images_dir is not None and (self.images_dir / Path(str(name)).name).is_file():
                (self.images_dir / Path(str(name)).name).unlink()
                gone += 1
        return gone


def _about(entry: dict[str, Any], gallery: str | None, person: str) -> bool:
    if entry.get("gallery") != gallery and gallery is not None:
        return False
    return entry.get("person") == person or person in (entry.get("names") or []) or entry.get("renamed_to") == person


def _without(entry: dict[str, Any], person: str) -> dict[str, Any]:
    out = dict(entry)
    if out.get("person") == person:
        out["person"] = None
    if out.get("renamed_to") == person:
        out["renamed_to"] = None
    if out.get("names"):
        out["names"] = [None if n == person else n for n in out["names"]]
    out["erased"] = True
    return out
