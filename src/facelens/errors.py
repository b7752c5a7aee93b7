"""Typed errors. Each carries a message a user can act on; the CLI prints it on one line."""

from __future__ import annotations

import re


class FacelensError(Exception):
    """Base of every error facelens raises on purpose."""


class ImageDecodeError(FacelensError):
    """The input could not be read as an image (missing, empty, truncated, wrong format, too large)."""


class VideoError(FacelensError):
    """A video file or stream could not be opened or read."""


class ModelUnavailableError(FacelensError):
    """A model file is not present locally and could not be downloaded."""


class ModelIntegrityError(FacelensError):
    """A model file exists but its sha256 does not match any known build."""


class NoFaceError(FacelensError):
    """An operation needed a face and the image has none."""


class GalleryError(FacelensError):
    """The gallery location is not a gallery, is damaged, or an operation on it is invalid."""


class ModelMismatchError(GalleryError):
    """Embeddings from one model were offered to a gallery built with another."""


class NotFoundError(GalleryError):
    """A person, face or collection named in a request does not exist."""


def redact_url(url: str) -> str:
    """A URL without its password, for messages and logs (database and stream URLs carry credentials)."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)
