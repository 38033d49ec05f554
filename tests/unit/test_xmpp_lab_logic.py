"""The XMPP lab's pure parts, without root: statistics, message bodies, specs, prosody files."""

from __future__ import annotations

import pytest

from xmpp_ofc.lab import cli, load
from xmpp_ofc.lab.xmpp_lab import LabDescription, LabHost, LabOptions
from xmpp_ofc.lab.xmpp_server import Account, ProsodyServer, lua_string, store_name


def test_percentile_is_nearest_rank():
    samples = [float(value) for value in range(1, 101)]
    assert load.percentile(samples, 0.50) == 50.0
    assert load.percentile(samples, 0.90) == 90.0
    assert load.percentile(samples, 0.99) == 99.0
    assert load.percentile([7.0], 0.99) == 7.0
    assert load.percentile([], 0.5) is None


def test_ttd_summary_of_no_samples_says_so():
    assert load.ttd_summary([]) == {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    assert load.ttd_summary([3.0, 1.0, 2.0])["max"] == 3.0


def test_message_body_round_trip_and_foreign_messages():
    body = load.message_body("spam", "x1", 123.5)
    assert load.parse_body(body) == ("spam", "x1", 123.5)
    assert load.parse_body("hello there") is None
    assert load.parse_body("xofc nobody x1 1.0") is None  # unknown role
    assert load.parse_body("xofc user c1 soon") is None


def tick(connected=1, user=0, spam=0, ttd=(), failures=0):
    return {
        "connected": connected,
        "sent": {"user": user, "spam": spam},
        "delivered": {"user": user, "spam": spam},
        "ttd": {"user": list(ttd), "spam": []},
        "delivered_from": {},
        "bounced": 0,
        "failures": failures,
    }


def test_window_adds_counters_and_keeps_the_latest_connected_gauge():
    window = load.Window(2)
    window.add("c1", tick(connected=5, user=3, ttd=[1.0, 2.0, 3.0]))
    window.add("c1", tick(connected=4, user=1, ttd=[4.0], failures=1))
    window.add("x1", tick(connected=1, spam=50))
    summary = window.summary()
    assert summary["start_s"] == 20.0
    assert summary["connected"] == 5  # 4 on c1 (latest) + 1 on x1
    assert summary["sent"] == {"user": 4, "spam": 50}
    assert summary["failures"] == 1
    assert summary["ttd_ms"]["user"]["p50"] == 2.0
    line = load.format_window(summary)
    assert line.startswith("[  20-  30 s] connected    5")
    assert "p50/p90/p99 2.0/4.0/4.0" in line


def description() -> LabDescription:
    def host(name, role, accounts):
        return LabHost(name, role, f"ns-{name}", "10.77.0.1", "02:00", 1, accounts)

    return LabDescription(
        tag="t",
        forwarding="normal",
        switch_namespace="ns-sw",
        switch_rundir="/tmp/sw",
        dpid=1,
        domain="lab.test",
        xmpp_port=5222,
        of_port=None,
        api_port=None,
        controller_log=None,
        server_log="/tmp/p.log",
        hosts=[
            host("xmpp", "server", []),
            host("c1", "user", [["c1u1", "a"], ["c1u2", "b"]]),
            host("c2", "user", [["c2u1", "c"], ["c2u2", "d"]]),
            host("x1", "spammer", [["x1u1", "e"]]),
        ],
    )


def test_worker_specs_send_only_to_well_behaved_users_at_their_role_rate():
    specs = load.worker_specs(description(), load.LoadOptions(rate=6, spam_rate=600, users=1))
    by_host = {spec.host: spec for spec in specs}
    assert set(by_host) == {"c1", "c2", "x1"}
    assert by_host["c1"].accounts == [["c1u1", "a"]]  # --users 1 per user host
    assert by_host["x1"].accounts == [["x1u1", "e"]]  # spammer hosts keep theirs
    assert by_host["c1"].recipients == ["c1u1@lab.test/load", "c2u1@lab.test/load"]
    assert (by_host["c1"].role, by_host["c1"].rate_per_minute) == ("user", 6)
    assert (by_host["x1"].role, by_host["x1"].rate_per_minute) == ("spam", 600)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (LabOptions(clients=0), "--clients"),
        (LabOptions(spammers=500), "--spammers"),
        (LabOptions(forwarding="flood"), "--forwarding"),
        (LabOptions(controller=False, forwarding="controller"), "needs the controller"),
        (LabOptions(of_port=7000, api_port=7000), "must differ"),
        (LabOptions(server="openfire"), "--server"),
    ],
)
def test_lab_options_refuse_what_cannot_be_built(options, message):
    with pytest.raises(ValueError, match=message):
        options.check()


def test_only_spammers_get_the_reconnect_period():
    options = load.LoadOptions(duration=30, spam_reconnect_after=12)
    options.check()
    by_host = {spec.host: spec for spec in load.worker_specs(description(), options)}
    assert by_host["x1"].reconnect_after == 12
    assert by_host["c1"].reconnect_after is None and by_host["c2"].reconnect_after is None
    assert load.worker_specs(description(), load.LoadOptions())[-1].reconnect_after is None


def test_summary_lists_every_login_with_its_time_after_the_go():
    specs = load.worker_specs(description(), load.LoadOptions())
    totals = load._Totals(specs)
    go_at = 100.0
    for port, t in ((40001, 99.5), (40002, 125.25)):
        record = {"kind": "connection", "host": "x1", "account": "x1u1", "t": t}
        totals.add_connection("x1", record | {"ip": "10.77.0.101", "port": port})
    totals.add_connection("c1", {"account": "c1u1", "ip": "10.77.0.11", "port": 40003, "t": 99.0})
    summary = totals.summary({}, load.LoadOptions(spam_reconnect_after=25), go_at, False)
    spammer = summary["hosts"]["x1"]
    assert spammer["connections"] == [
        {"account": "x1u1", "ip": "10.77.0.101", "port": 40001, "at_s": -0.5},
        {"account": "x1u1", "ip": "10.77.0.101", "port": 40002, "at_s": 25.25},
    ]
    assert spammer["reconnects"] == 1
    assert summary["hosts"]["c1"]["reconnects"] == 0
    assert summary["spam_reconnect_after_s"] == 25
    assert "reconnects 1" in load.format_totals(summary)
    assert "reconnects" not in load.format_totals(summary).splitlines()[-2]  # c2: none


def test_load_command_passes_the_reconnect_period():
    args = cli.build_parser().parse_args(["load", "--spam-reconnect-after", "20"])
    assert args.spam_reconnect_after == 20.0
    assert cli.build_parser().parse_args(["load"]).spam_reconnect_after is None


@pytest.mark.parametrize(
    "options",
    [
        load.LoadOptions(duration=0),
        load.LoadOptions(rate=0),
        load.LoadOptions(users=0),
        load.LoadOptions(duration=30, spam_reconnect_after=0.5),
        load.LoadOptions(duration=30, spam_reconnect_after=30),
    ],
)
def test_load_options_refuse_nonsense(options):
    with pytest.raises(ValueError):
        options.check()


def test_prosody_file_names_and_lua_strings():
    assert store_name("lab.test") == "lab%2etest"
    assert store_name("c1u1") == "c1u1"
    assert store_name("a_b-c") == "a%5fb%2dc"
    assert lua_string('pa"ss\\') == '"pa\\"ss\\\\"'


def test_prosody_config_and_accounts(tmp_path):
    server = ProsodyServer(tmp_path / "p", namespace="ns", address="10.77.0.10")
    server.write_config()
    config = server.config_path.read_text()
    assert 'c2s_interfaces = { "10.77.0.10" }' in config
    assert "tcp_backlog = 4096" in config
    assert "allow_unencrypted_plain_auth = true" in config
    assert (tmp_path / "p" / "certs").is_dir()
    assert server.add_accounts([Account("c1u1", "lab.test", "c1u1-pw")]) == 1
    account = tmp_path / "p" / "data" / "lab%2etest" / "accounts" / "c1u1.dat"
    assert account.read_text() == 'return {\n\t["password"] = "c1u1-pw";\n};\n'


def test_status_formats_rate_limiter_answers():
    assert cli.format_entries([]) == ["(none)"]
    assert cli.format_entries({"blocked": [{"ip": "10.77.0.101", "port": 40000}]}) == [
        "ip=10.77.0.101  port=40000"
    ]
    assert cli.format_entries([{"a": 1}, "b"]) == ["a=1", "b"]
