#!/usr/bin/env bash
# Install (as root) or name (otherwise) the Debian packages a make target needs.
#   venv: what `python3 -m venv` needs;  test: Open vSwitch, ethtool, prosody and ejabberd (the
#   lab's XMPP servers) too, Chromium with its WebDriver (the dashboard's browser test),
#   Prometheus and carbon-cache (the real metrics consumers, tests/controller/test_metrics_consumers.py),
#   and PostgreSQL (the shared store, tests/controller/test_rate_limiter_postgres.py).
set -euo pipefail
what=${1:-test}
python=${PYTHON:-python3}

missing=()
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "error: $python is not Python 3.11 (Kytos 2021.1 is fixed up for 3.11 only)." >&2
  echo "       Install python3.11 (Debian 12: apt-get install python3) or run: make PYTHON=/path/to/python3.11 ..." >&2
  exit 1
fi
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ "$what" = test ]; then
  command -v ovs-vswitchd >/dev/null 2>&1 || missing+=(openvswitch-switch)
  command -v ethtool >/dev/null 2>&1 || missing+=(ethtool)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v prosody >/dev/null 2>&1 || missing+=(prosody)
  [ -x /usr/sbin/ejabberdctl ] || missing+=(ejabberd)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v carbon-cache >/dev/null 2>&1 || missing+=(graphite-carbon)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  echo "==> installed: ${missing[*]}"
else
  echo "error: missing Debian packages: ${missing[*]}" >&2
  echo "       run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  echo "       (the integration tests also need root for network namespaces)" >&2
  exit 1
fi
