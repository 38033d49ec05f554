"""The bundle installs into Kytos' own ``.installed`` + symlink layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from xmpp_ofc import napp_layout


def test_manifest_lists_the_five_napps_with_their_own_kytos_json():
    napps = napp_layout.bundled_napps()
    assert [n.napp_id for n in napps] == [
        "kytos/of_core",
        "kytos/flow_manager",
        "xmpp_ofc/dispatcher",
        "xmpp_ofc/l2_switch",
        "xmpp_ofc/rate_limiter",
    ]
    for napp in napps:
        meta = json.loads((napp.source / "kytos.json").read_text())
        assert (meta["username"], meta["name"], meta["version"]) == (
            napp.username,
            napp.name,
            napp.version,
        )


def test_install_creates_installed_links_and_enabled_links(tmp_path: Path):
    napps = napp_layout.bundled_napps()
    napp_layout.install(tmp_path, napps)
    for napp in napps:
        installed = tmp_path / ".installed" / napp.username / napp.name
        enabled = tmp_path / napp.username / napp.name
        assert installed.is_symlink() and installed.resolve() == napp.source.resolve()
        assert enabled.is_symlink() and enabled.readlink() == installed
        assert (tmp_path / napp.username / "__init__.py").is_file()
        assert (tmp_path / ".installed" / napp.username / "__init__.py").is_file()


def test_kytos_napps_manager_sees_the_layout(tmp_path: Path):
    """Kytos' own manager (used by its REST enable/disable) finds and toggles them."""
    from kytos.core.napps.manager import NAppsManager

    napps_dir = tmp_path / "var" / "lib" / "kytos" / "napps"
    napp_layout.install(napps_dir, napp_layout.bundled_napps())
    manager = NAppsManager(base_path=napps_dir)
    assert {n.id for n in manager.get_enabled_napps()} == {
        n.napp_id for n in napp_layout.bundled_napps()
    }
    manager.disable("xmpp_ofc", "l2_switch")
    assert not manager.is_enabled("xmpp_ofc", "l2_switch")
    manager.enable("xmpp_ofc", "l2_switch")
    assert manager.is_enabled("xmpp_ofc", "l2_switch")


def test_install_is_idempotent_and_repairs_stale_links(tmp_path: Path):
    napps = napp_layout.bundled_napps()
    stale = tmp_path / ".installed" / "kytos"
    stale.mkdir(parents=True)
    (stale / "of_core").symlink_to(tmp_path)  # points somewhere else
    napp_layout.install(tmp_path, napps)
    napp_layout.install(tmp_path, napps)
    assert (stale / "of_core").resolve() == napps[0].source.resolve()


def test_install_without_enable_and_uninstall(tmp_path: Path, capsys):
    assert napp_layout.main(["install", "--no-enable", "--napps-dir", str(tmp_path)]) == 0
    rows = napp_layout.listing(tmp_path, napp_layout.bundled_napps())
    assert all(installed and not enabled for _, _, installed, enabled in rows)
    napp_layout.main(["uninstall", "--napps-dir", str(tmp_path)])
    rows = napp_layout.listing(tmp_path, napp_layout.bundled_napps())
    assert not any(installed or enabled for _, _, installed, enabled in rows)
    assert "removed from" in capsys.readouterr().out


def test_kytos_base_dir_is_the_venv_even_when_not_activated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VIRTUAL_ENV", "/opt/venv")
    assert napp_layout.kytos_base_dir() == Path("/opt/venv")
    assert napp_layout.default_napps_dir() == Path("/opt/venv/var/lib/kytos/napps")
    monkeypatch.delenv("VIRTUAL_ENV")
    assert napp_layout.kytos_base_dir() == Path(sys.prefix)
