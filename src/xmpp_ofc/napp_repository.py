"""The bundle's NApps as ``.napp`` packages in a local NApps repository, Kytos' own format.

Kytos 2021.1 core installs a NApp (``GET /api/kytos/core/napps/<user>/<napp>/install``,
which ``kytos napps install`` calls) by downloading
``<napps_repositories[0]>/<user>/<napp>-<version>.napp`` with ``urlretrieve``
(``file://`` works), opening it as ``tar.xz``, looking for ``kytos.json`` at the
top (or under ``<user>/<napp>/``), moving that directory to
``napps/.installed/<user>/<napp>``, installing each ``napp_dependencies`` entry
the same way, and enabling it.  A dependency or a request without a version
asks for ``<napp>-latest.napp``, so both names are written.  Core reads no
index file, only those package URLs.

A package holds the files of the NApp directory with paths relative to it,
minus what its ``.gitignore`` names: exactly what kytos-utils'
``build_napp_package`` (``kytos napps upload``, run in the NApp directory)
uploads to a NApps server, so the same directories are ready for upload
(``tests/unit/test_napp_repository.py`` compares the two).
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
from pathlib import Path

from xmpp_ofc.napp_layout import BundledNApp, kytos_base_dir

#: Under Kytos' base directory, beside ``var/lib/kytos/napps``.
REPOSITORY_RELATIVE_PATH = Path("var") / "lib" / "kytos" / "napps-repository"


def default_repository_dir(base_dir: Path | None = None) -> Path:
    return (base_dir or kytos_base_dir()) / REPOSITORY_RELATIVE_PATH


def repository_url(repo_dir: Path) -> str:
    """The ``napps_repositories`` entry for ``repo_dir`` (no trailing slash: core adds one)."""
    return repo_dir.resolve().as_uri()


def ignore_patterns(napp_dir: Path) -> list[str]:
    """The NApp's ``.gitignore`` patterns (the simple forms our NApps use), plus ``.git``."""
    patterns = [".git/"]
    gitignore = napp_dir / ".gitignore"
    if gitignore.is_file():
        for raw in gitignore.read_text().splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                patterns.append(line)
    return patterns


def _ignored(relative: Path, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/"):
            if pattern.rstrip("/") in relative.parts[:-1]:
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in relative.parts):
            return True
    return False


def package_members(napp_dir: Path) -> list[str]:
    """The package's member names: every file under ``napp_dir`` not ignored, sorted."""
    patterns = ignore_patterns(napp_dir)
    members = []
    for root, dirs, files in os.walk(napp_dir):
        dirs.sort()
        for name in files:
            relative = (Path(root) / name).relative_to(napp_dir)
            if not _ignored(relative, patterns):
                members.append(relative.as_posix())
    return sorted(members)


def package_bytes(napp_dir: Path) -> bytes:
    """The ``.napp`` (tar.xz) of ``napp_dir``; same input, same bytes (no owners, fixed order)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for member in package_members(napp_dir):
            info = tar.gettarinfo(str(napp_dir / member), arcname=member)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(napp_dir / member, "rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def package_paths(repo_dir: Path, napp: BundledNApp) -> tuple[Path, Path]:
    """``<repo>/<user>/<napp>-<version>.napp`` and its ``-latest`` twin."""
    folder = repo_dir / napp.username
    return folder / f"{napp.name}-{napp.version}.napp", folder / f"{napp.name}-latest.napp"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def build_repository(repo_dir: Path, napps: list[BundledNApp]) -> list[Path]:
    """Write each NApp's package (both names) under ``repo_dir``; return the versioned paths.

    Rebuilt from the sources each time (a few hundred KB of xz), so the
    repository always serves what the checkout holds.
    """
    written = []
    for napp in napps:
        data = package_bytes(napp.source)
        versioned, latest = package_paths(repo_dir, napp)
        _write_atomically(versioned, data)
        _write_atomically(latest, data)
        written.append(versioned)
    return written
