"""Fixtures for tests against a real Open vSwitch in network namespaces.

Tests marked ``ovs`` need root (namespaces, veths, ethtool) and Open vSwitch.
They are skipped only when one of those is missing, with the reason in the
skip message, the report header and the summary: CI runs ``make test`` as
root, which installs Open vSwitch, so there they always run.
"""

from __future__ import annotations

import os
import shutil

import pytest

from xmpp_ofc.lab import Topology, state

OVS_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def ovs_unavailable_reason() -> str | None:
    """Why ``ovs`` tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return (
            "OVS INTEGRATION TESTS SKIPPED: not root (network namespaces and veths need "
            "CAP_SYS_ADMIN/CAP_NET_ADMIN); run `make test` as root"
        )
    if shutil.which("ovs-vswitchd", path=OVS_SEARCH_PATH) is None:
        return (
            "OVS INTEGRATION TESTS SKIPPED: ovs-vswitchd not found; "
            "`make test` as root installs it (apt-get install openvswitch-switch)"
        )
    return None


def pytest_report_header(config):
    reason = ovs_unavailable_reason()
    return [reason] if reason else ["ovs integration tests: enabled (root, ovs-vswitchd found)"]


def pytest_collection_modifyitems(config, items):
    reason = ovs_unavailable_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("ovs"):
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reason = ovs_unavailable_reason()
    if reason:
        terminalreporter.write_sep("!", reason, red=True, bold=True)


@pytest.fixture
def lab():
    """Build :class:`Topology` objects under a fresh tag; tear them down after the test.

    After teardown the test also fails if anything with the tag survived, so
    every test that uses a topology checks the cleanup too.  The OVS logs are
    printed (pytest shows them when the test failed).
    """
    built: list[Topology] = []

    def build(**kwargs) -> Topology:
        topology = Topology(**kwargs)
        built.append(topology)
        return topology

    yield build
    for topology in built:
        for switch in topology.switches.values():
            for log in sorted(switch.ovs.rundir.glob("*.log")):
                print(f"--- {log} ---\n{log.read_text(errors='replace')[-4000:]}")
        topology.stop()
        assert state.namespaces_of(topology.tag) == [], "namespaces survived teardown"
        assert not state.tag_dir(topology.tag).exists(), "state directory survived teardown"
