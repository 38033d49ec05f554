"""The lab's ejabberd files and command lines, without root or a running node."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from xmpp_ofc.lab import cli, ejabberd
from xmpp_ofc.lab.ejabberd import EjabberdServer
from xmpp_ofc.lab.xmpp_lab import LabDescription
from xmpp_ofc.lab.xmpp_server import Account

PIE = "{urn:xmpp:pie:0}"


def server(tmp_path) -> EjabberdServer:
    return EjabberdServer(tmp_path / "ejabberd", "xofc-t1-xmpp", "10.77.0.10", tag="t1")


def test_piefxis_lists_every_account_per_domain_and_escapes():
    accounts = [
        Account("c1u1", "lab.test", "c1u1-pw"),
        Account("c1u2", "lab.test", "p'<&>\""),
        Account("x", "other.test", "y"),
    ]
    root = ET.fromstring(ejabberd.piefxis(accounts))
    hosts = {
        host.get("jid"): [(user.get("name"), user.get("password")) for user in host]
        for host in root.iter(f"{PIE}host")
    }
    assert hosts == {
        "lab.test": [("c1u1", "c1u1-pw"), ("c1u2", "p'<&>\"")],
        "other.test": [("x", "y")],
    }


def test_ctl_command_uses_only_the_labs_files_node_and_user(tmp_path):
    command = server(tmp_path).ctl_command("status")
    assert command[0] == "prlimit"
    assert command[command.index("setpriv") + 1 : command.index("setpriv") + 3] == [
        "--reuid=ejabberd",
        "--regid=ejabberd",
    ]  # setpriv, not su: pam_limits would reset nofile to 1024
    assert f"HOME={tmp_path / 'ejabberd'}" in command  # the lab's own cookie
    for option in ("--config-dir", "--config", "--ctl-config", "--spool", "--logs"):
        assert command[command.index(option) + 1].startswith(str(tmp_path / "ejabberd"))
    assert command[command.index("--node") + 1] == "xofc_t1@localhost"
    assert command[-1] == "status"
    assert not [arg for arg in command if "/etc/ejabberd" in arg or "/var/lib" in arg]


def test_config_files_name_the_labs_address_and_no_epmd(tmp_path, monkeypatch):
    monkeypatch.setattr(EjabberdServer, "_own", lambda self, top: None)  # chown needs root
    monkeypatch.setattr(EjabberdServer, "_check_reachable", lambda self: None)  # tmp_path: 0700
    lab = server(tmp_path)
    lab.write_config()
    config = lab.config_path.read_text()
    assert 'ip: "10.77.0.10"' in config
    assert "backlog: 4096" in config
    assert "c2s_shaper: none" in config
    assert "fail2ban" not in config.split("modules:")[1]
    ctl = lab.ctl_config_path.read_text()
    assert f"EJABBERD_PID_PATH={lab.pidfile}" in ctl
    assert f"ERL_DIST_PORT={ejabberd.DIST_PORT}" in ctl  # no epmd
    assert "{127,0,0,1}" in ctl
    cookie = lab.directory / ".erlang.cookie"
    assert len(cookie.read_text()) == 32
    assert cookie.stat().st_mode & 0o777 == 0o400
    lab.write_config()  # a rewrite keeps the cookie (a running node keeps its own)


def test_a_directory_the_ejabberd_user_cannot_enter_is_refused_before_start(tmp_path):
    tmp_path.chmod(0o700)
    with pytest.raises(PermissionError, match="cannot enter"):
        server(tmp_path).write_config()


def test_an_old_description_without_the_server_kind_means_prosody():
    description = LabDescription(
        tag="t", forwarding="normal", switch_namespace="ns", switch_rundir="/r", dpid=1,
        domain="lab.test", xmpp_port=5222, of_port=None, api_port=None,
        controller_log=None, server_log="/r/p.log",
    )  # fmt: skip
    assert description.server_kind == "prosody"


def test_up_names_the_package_of_the_chosen_server(monkeypatch):
    monkeypatch.setattr(cli, "_found", lambda program: program != "ejabberdctl")
    assert cli.missing_packages("ejabberd") == ["ejabberd"]
    assert cli.missing_packages("prosody") == []
