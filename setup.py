"""Packaging of the xmpp_ofc bundle: the shared library plus the NApp sources.

``pip install .`` installs the ``xmpp_ofc`` package and copies the bundle
manifest and ``napps/`` to ``<prefix>/share/xmpp_ofc``; ``xmpp-ofc-napps
install`` then links them into Kytos' NApps directory.  ``pip install -e .``
(what ``make`` does) links the checkout instead.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def napp_data_files():
    """Every file under napps/, grouped by directory, for share/xmpp_ofc."""
    groups = {}
    for path in sorted((ROOT / "napps").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(ROOT)
            groups.setdefault(str(Path("share/xmpp_ofc") / rel.parent), []).append(str(rel))
    return [("share/xmpp_ofc", ["kytos.json"]), *groups.items()]


setup(
    name="xmpp-ofc",
    version="0.1.0",
    description="Kytos NApps: OpenFlow 1.3 L2 switch and XMPP flood protection",
    python_requires=">=3.11,<3.12",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"xmpp_ofc": ["py.typed"]},
    data_files=napp_data_files(),
    install_requires=[
        "kytos==2021.1",
        "python-openflow==2021.1",
        # Metrics: Prometheus exposition and the Graphite push (xmpp_ofc.metrics).
        "prometheus_client==0.26.0",
        # The lab's XMPP load (python -m xmpp_ofc.lab load) and the end-to-end tests.
        "slixmpp==1.17.0",
    ],
    extras_require={
        "test": [
            "hypothesis==6.170.15",
            # Every openapi.yml is checked as OpenAPI 3 (tests/unit/test_openapi_specs_valid.py).
            "openapi-spec-validator==0.9.0",
            "PyYAML==6.0.4",
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",
            # The bounded API fuzzing pass (tests/controller/test_schemathesis.py).
            "schemathesis==4.32.5",
            "ruff==0.17.5",
            # The dashboard's browser test drives Debian's chromium + chromedriver.
            "selenium==4.51.0",
        ],
    },
    entry_points={
        "console_scripts": [
            "xmpp-ofc-controller = xmpp_ofc.launcher:main",
            "xmpp-ofc-kytosd = xmpp_ofc.launcher:kytosd_main",
            "xmpp-ofc-napps = xmpp_ofc.napp_layout:main",
        ]
    },
)
