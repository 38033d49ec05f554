"""The local NApps repository: Kytos core installs from it, kytos-utils would upload the same."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from xmpp_ofc import napp_layout, napp_repository

NAPPS = napp_layout.bundled_napps()
BY_ID = {napp.napp_id: napp for napp in NAPPS}


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    napp_repository.build_repository(path, NAPPS)
    return path


def test_repository_layout_is_user_slash_napp_dash_version_dot_napp(repo):
    names = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.napp"))
    expected = []
    for napp in NAPPS:
        expected += [f"{napp.napp_id}-{napp.version}.napp", f"{napp.napp_id}-latest.napp"]
    assert names == sorted(expected)


def test_package_is_tar_xz_with_kytos_json_at_the_top_and_no_bytecode(repo, tmp_path):
    napp = BY_ID["xmpp_ofc/rate_limiter"]
    (napp.source / "__pycache__").mkdir(exist_ok=True)  # what any import leaves behind
    napp_repository.build_repository(repo, [napp])
    versioned, _ = napp_repository.package_paths(repo, napp)
    with tarfile.open(versioned, "r:xz") as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile("kytos.json"))
    assert "main.py" in names and "openapi.yml" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert (meta["username"], meta["name"], meta["version"]) == (
        "xmpp_ofc",
        "rate_limiter",
        "0.1.0",
    )


def test_same_sources_same_bytes(tmp_path):
    napp = BY_ID["kytos/of_core"]
    assert napp_repository.package_bytes(napp.source) == napp_repository.package_bytes(napp.source)


def test_kytos_core_installs_rate_limiter_with_its_dependencies_from_the_repository(repo, tmp_path):
    """Kytos core's own NAppsManager.install (what its REST install runs), against file://."""
    from kytos.core.napps.manager import NAppsManager

    napps_dir = tmp_path / "kytos" / "napps"
    options = SimpleNamespace(
        napps=str(napps_dir), napps_repositories=[napp_repository.repository_url(repo)]
    )
    manager = NAppsManager(SimpleNamespace(options=options))
    assert manager.install("xmpp_ofc/rate_limiter", enable=True)

    wanted = {"kytos/of_core", "kytos/flow_manager", "xmpp_ofc/dispatcher", "xmpp_ofc/rate_limiter"}
    assert {napp.id for napp in manager.get_installed_napps()} == wanted
    assert {napp.id for napp in manager.get_enabled_napps()} == wanted
    for napp_id in wanted:
        installed = napps_dir / ".installed" / napp_id
        assert installed.is_dir() and not installed.is_symlink()  # unpacked, not our links
        source = BY_ID[napp_id].source
        assert (installed / "kytos.json").read_text() == (source / "kytos.json").read_text()
        assert (installed / ".repo").read_text().strip() == options.napps_repositories[0]
        assert (napps_dir / napp_id).resolve() == installed.resolve()


KYTOS_UTILS_PACKAGE = """
import json, os, sys, tarfile
from kytos.utils.napps import NAppsManager
os.chdir(sys.argv[1])
meta = NAppsManager.create_metadata()
payload = NAppsManager.build_napp_package(meta["name"])
with tarfile.open(fileobj=payload, mode="r:xz") as tar:
    names = sorted(tar.getnames())
print(json.dumps({"names": names, "meta": sorted(meta), "openapi": bool(meta["OpenAPI_Spec"])}))
"""


@pytest.mark.parametrize("napp_id", sorted(BY_ID))
def test_kytos_utils_upload_would_package_the_same_files(napp_id, repo, tmp_path):
    """``kytos napps upload`` (kytos-utils' own packaging) on a NApp directory: same members."""
    napp = BY_ID[napp_id]
    copy = tmp_path / napp.username / napp.name
    shutil.copytree(napp.source, copy)
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    env = {**os.environ, "HOME": str(tmp_path), "VIRTUAL_ENV": str(tmp_path / "venv")}
    done = subprocess.run(
        [sys.executable, "-c", KYTOS_UTILS_PACKAGE, str(copy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    versioned, _ = napp_repository.package_paths(repo, napp)
    with tarfile.open(versioned, "r:xz") as tar:
        ours = sorted(tar.getnames())
    assert result["names"] == ours
    for key in ("username", "name", "version", "description", "napp_dependencies", "license"):
        assert key in result["meta"]
    assert result["openapi"] == (napp.source / "openapi.yml").is_file()


def test_launcher_conf_names_the_local_repository_for_kytos(tmp_path):
    """kytos.conf's ``napps_repositories`` as Kytos parses it: our repository, first."""
    from kytos.core.config import KytosConfig

    from xmpp_ofc import kytos_py311, launcher

    conf = launcher.write_config(tmp_path, launcher.parse_args([]))
    with kytos_py311.pinned_argv(["kytosd", "-c", str(conf)]):
        options = KytosConfig().options["daemon"]
    expected = napp_repository.repository_url(napp_repository.default_repository_dir(tmp_path))
    assert options.napps_repositories == [expected]
    assert expected == f"file://{tmp_path.resolve()}/var/lib/kytos/napps-repository"
