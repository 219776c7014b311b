"""The study's secret pseudonymisation salt, kept in ``.secrets/<study>.salt``: created once, never replaced.

Light (the standard library and the atomic writers), because declaring ingest's steps reads it: each
wave step's settings include the salt's hash, so a new salt (a new study folder) re-ingests every wave.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

from impactstudy.errors import DataError
from impactstudy.pipeline.atomic import make_folder, write_text
from impactstudy.pipeline.paths import StudyPaths

SALT_MIN_CHARS = 32


def load_salt(paths: StudyPaths) -> bytes:
    """The study's pseudonymisation salt, created (readable by its owner only) on first use.

    It is written aside and linked into place, so a full disk or a kill leaves no empty or short salt,
    and one found empty or short is refused rather than used as the key. The first salt's fingerprint
    is kept with the processed data: a salt replaced later would give every respondent new pseudonyms
    that no longer link to the earlier outputs, so that is refused too.
    """
    path = paths.secret_salt
    make_folder(path.parent)  # .secrets/: owner-only (an existing one open to others is narrowed)
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates it readable by its owner only
                handle.write(os.urandom(32).hex().encode("ascii"))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another run created it first: use theirs
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    salt = path.read_bytes().strip()
    if len(salt) < SALT_MIN_CHARS:
        raise DataError(
            f"{path}: the pseudonymisation salt is {'empty' if not salt else 'too short'} ({len(salt)} characters, "
            f"at least {SALT_MIN_CHARS} expected): restore it from your backup; only if it is lost, delete it and "
            f"{paths.processed} to start afresh (every pseudonym will change)")
    fingerprint = hashlib.sha256(b"impactstudy salt fingerprint\0" + salt).hexdigest()
    recorded = paths.salt_fingerprint.read_text(encoding="ascii").strip() if paths.salt_fingerprint.is_file() else None
    if recorded is None:
        write_text(paths.salt_fingerprint, fingerprint + "\n")
    elif recorded != fingerprint:
        raise DataError(
            f"{path}: this is not the salt the processed data of study '{paths.study}' were made with, so the "
            f"pseudonyms would no longer link across waves: restore the original salt; only if it is lost, delete "
            f"{paths.processed} to start afresh")
    return salt
