"""Put the bundle's NApps where kytosd finds them, in Kytos' own layout.

Kytos 2021.1 keeps installed NApps in ``<napps>/.installed/<user>/<napp>`` and
enables one by symlinking ``<napps>/<user>/<napp>`` to it.  Its REST calls
(``/api/kytos/core/napps/<user>/<napp>/enable|disable``) and kytos-utils
(``kytos napps enable|disable|list``) only work on that layout, so we
reproduce it: ``.installed/<user>/<napp>`` is a symlink to our source tree
(like upstream's ``setup.py develop``), so edits take effect on restart.

Command line: ``xmpp-ofc-napps install|uninstall|list [--napps-dir DIR]``, and
``xmpp-ofc-napps build-repo [--repo DIR]``: the ``.napp`` packages for
``kytos napps install`` (:mod:`xmpp_ofc.napp_repository`; the launcher builds
them at every start, so this is for a kytosd you run yourself).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BundledNApp:
    """One NApp of the bundle, as listed in the bundle manifest."""

    username: str
    name: str
    version: str
    source: Path

    @property
    def napp_id(self) -> str:
        return f"{self.username}/{self.name}"


def bundle_root() -> Path:
    """Return the directory holding the bundle manifest and ``napps/``.

    In a checkout (editable install) that is the repository; in a regular
    ``pip install .`` it is ``<prefix>/share/xmpp_ofc``.
    """
    checkout = PACKAGE_DIR.parent.parent
    if (checkout / "kytos.json").is_file() and (checkout / "napps").is_dir():
        return checkout
    installed = Path(sys.prefix) / "share" / "xmpp_ofc"
    if (installed / "kytos.json").is_file():
        return installed
    raise FileNotFoundError(
        f"bundle manifest kytos.json not found in {checkout} or {installed}; "
        "reinstall the package with 'pip install .' from the repository"
    )


def bundled_napps(root: Path | None = None) -> list[BundledNApp]:
    """Read the NApps of the bundle from its top-level ``kytos.json``."""
    root = root or bundle_root()
    manifest = json.loads((root / "kytos.json").read_text())
    napps = []
    for entry in manifest["napps"]:
        username, name = entry["id"].split("/")
        source = root / "napps" / username / name
        if not (source / "kytos.json").is_file():
            raise FileNotFoundError(f"{entry['id']}: no kytos.json in {source}")
        napps.append(BundledNApp(username, name, entry["version"], source))
    return napps


def kytos_base_dir() -> Path:
    """Where Kytos' ``var/lib/kytos`` lives: ``$VIRTUAL_ENV``, else this interpreter's prefix.

    ``.venv/bin/kytosd`` run without activating the venv has no VIRTUAL_ENV, yet
    its files belong in the venv (``sys.prefix``), not under ``/`` where a second
    venv's controller would share (and overwrite) them.
    """
    return Path(os.environ.get("VIRTUAL_ENV") or sys.prefix)


def default_napps_dir() -> Path:
    """The enabled-NApps directory Kytos uses: ``<kytos_base_dir>/var/lib/kytos/napps``."""
    return kytos_base_dir() / "var" / "lib" / "kytos" / "napps"


def _touch_package(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "__init__.py").touch()


def _replace_symlink(link: Path, target: Path) -> None:
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target, target_is_directory=True)


def install(napps_dir: Path, napps: list[BundledNApp], enable: bool = True) -> list[str]:
    """Install (and enable) ``napps`` under ``napps_dir``; return their ids.

    Idempotent: re-running points the links at the current sources.
    """
    installed_root = napps_dir / ".installed"
    for napp in napps:
        _touch_package(installed_root / napp.username)
        installed = installed_root / napp.username / napp.name
        if not (installed.is_symlink() and installed.resolve() == napp.source.resolve()):
            _replace_symlink(installed, napp.source)
        if enable:
            _touch_package(napps_dir / napp.username)
            enabled = napps_dir / napp.username / napp.name
            if not (enabled.is_symlink() and enabled.resolve() == napp.source.resolve()):
                _replace_symlink(enabled, installed)
    return [napp.napp_id for napp in napps]


def uninstall(napps_dir: Path, napps: list[BundledNApp]) -> list[str]:
    """Disable and remove ``napps`` from ``napps_dir``; return their ids."""
    for napp in napps:
        for link in (
            napps_dir / napp.username / napp.name,
            napps_dir / ".installed" / napp.username / napp.name,
        ):
            if link.is_symlink():
                link.unlink()
    return [napp.napp_id for napp in napps]


def listing(napps_dir: Path, napps: list[BundledNApp]) -> list[tuple[str, str, bool, bool]]:
    """Return ``(id, version, installed, enabled)`` for each bundled NApp."""
    rows = []
    for napp in napps:
        installed = (napps_dir / ".installed" / napp.username / napp.name).exists()
        enabled = (napps_dir / napp.username / napp.name).exists()
        rows.append((napp.napp_id, napp.version, installed, enabled))
    return rows


def enabled_ids(napps_dir: Path) -> list[tuple[str, str]]:
    """``(user, napp)`` of every NApp enabled in ``napps_dir``, as Kytos finds them."""
    return sorted(path.parts[-3:-1] for path in napps_dir.glob("*/*/kytos.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xmpp-ofc-napps",
        description="Install the xmpp_ofc NApp bundle into a Kytos NApps directory.",
    )
    parser.add_argument("command", choices=["install", "uninstall", "list", "build-repo"])
    parser.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="build-repo: the NApps repository directory "
        "(default: $VIRTUAL_ENV/var/lib/kytos/napps-repository)",
    )
    parser.add_argument(
        "--napps-dir",
        type=Path,
        default=None,
        help="Kytos NApps directory (default: $VIRTUAL_ENV/var/lib/kytos/napps)",
    )
    parser.add_argument(
        "--no-enable", action="store_true", help="install without enabling (install only)"
    )
    args = parser.parse_args(argv)
    napps_dir = args.napps_dir or default_napps_dir()
    napps = bundled_napps()
    if args.command == "build-repo":
        from xmpp_ofc import napp_repository

        repo = args.repo or napp_repository.default_repository_dir()
        for path in napp_repository.build_repository(repo, napps):
            print(path)
        print(f"napps_repositories = {json.dumps([napp_repository.repository_url(repo)])}")
    elif args.command == "install":
        ids = install(napps_dir, napps, enable=not args.no_enable)
        verb = "installed" if args.no_enable else "installed and enabled"
        print(f"{verb} in {napps_dir}: {', '.join(ids)}")
    elif args.command == "uninstall":
        ids = uninstall(napps_dir, napps)
        print(f"removed from {napps_dir}: {', '.join(ids)}")
    else:
        for napp_id, version, installed, enabled in listing(napps_dir, napps):
            state = "enabled" if enabled else ("installed" if installed else "-")
            print(f"{napp_id:28} {version:8} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
