"""docs/grafana/xmpp_ofc.json: the seed's panels, each query naming metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xmpp_ofc import metrics

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "xmpp_ofc.json"

# PromQL words that are not metric names: aggregations, modifiers, keywords.
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and"}
    | {"or", "unless", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads.

    Removes strings, label matchers ``{...}``, ranges ``[...]`` and grouping
    clauses ``by (...)``; what is left that is an identifier not followed by
    ``(`` (a function) and not a PromQL word is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for found in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[found.end() :].lstrip()
        word = found.group(0)
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


def queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]


def test_the_extractor_finds_names_and_skips_functions_labels_and_groupings():
    expr = (
        'histogram_quantile(0.99, sum by (le, napp) (rate(xmpp_ofc_packet_in_secs_bucket{napp="x"}'
        "[1m]))) + on (dp_id) topk(10, of_packet_ins_total) * 10"
    )
    assert metric_names(expr) == {"xmpp_ofc_packet_in_secs_bucket", "of_packet_ins_total"}


def test_a_typo_in_a_query_would_be_caught():
    exported = metrics.exported_sample_names()
    assert metric_names("sum(rate(of_packet_in_total[1m]))") - exported == {"of_packet_in_total"}
    # A counter without _total is not exposed under that name either.
    assert metric_names("rate(of_packet_ins[1m])") - exported == {"of_packet_ins"}


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_query_names_only_exported_metrics(title, expr):
    names = metric_names(expr)
    assert names, f"{title}: no metric in {expr!r}"
    unknown = names - metrics.exported_sample_names()
    assert not unknown, f"{title}: {expr!r} names metrics the code does not export: {unknown}"


def test_the_seeds_panels_are_there_on_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in (
        "OpenFlow messages / 10 s",
        "Switches connected",
        "Monitored and blocked clients",
        "Blocks and unblocks / min",
        "Packet-in handling time",
    ):
        assert wanted in titles
    datasource = dashboard["templating"]["list"][0]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == "prometheus"
        assert panel["targets"], panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
