"""Which modules run on which switch, and what each one hears: the seed's ``ModsConfig``.

Every switch starts with each module's default (enabled or not, default
subscriptions); an operator can enable, disable or resubscribe a module per switch at
runtime.  Configuration is kept for switches that are down, so a switch comes back
the way it was left.

Kytos runs every event handler and REST request on its own thread, so the state is
guarded by a lock here rather than trusting every caller to take one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from xmpp_ofc.cookies import Owner
from xmpp_ofc.messages import MessageType


class UnknownModuleError(KeyError):
    """A module name that is not registered with the dispatcher."""

    def __str__(self) -> str:
        return f"unknown module {self.args[0]!r}"


@dataclass(frozen=True)
class ModuleSpec:
    """A module the dispatcher can route to."""

    name: str
    owner: Owner
    subscriptions: frozenset[MessageType]
    enabled_by_default: bool = True

    def __post_init__(self) -> None:
        if self.owner is Owner.DISPATCHER:
            raise ValueError("the dispatcher's owner byte cannot belong to a module")
        object.__setattr__(self, "subscriptions", frozenset(self.subscriptions))


#: The bundle's modules; the l2 switch needs port status to forget MACs of dead ports.
DEFAULT_MODULES: tuple[ModuleSpec, ...] = (
    ModuleSpec(
        name="l2_switch",
        owner=Owner.L2_SWITCH,
        subscriptions=frozenset(
            {MessageType.PACKET_IN, MessageType.PORT_STATUS, MessageType.SWITCH_DOWN}
        ),
    ),
    ModuleSpec(
        name="rate_limiter",
        owner=Owner.RATE_LIMITER,
        subscriptions=frozenset(
            {
                MessageType.PACKET_IN,
                MessageType.FLOW_STATS,
                MessageType.FLOW_REMOVED,
                MessageType.SWITCH_DOWN,
            }
        ),
    ),
)


@dataclass
class _ModuleOnSwitch:
    enabled: bool
    subscriptions: frozenset[MessageType]


class ModuleConfig:
    """Per-switch enabled modules and subscriptions."""

    def __init__(self, specs: Iterable[ModuleSpec] = DEFAULT_MODULES) -> None:
        self._specs: dict[str, ModuleSpec] = {}
        self._by_owner: dict[Owner, ModuleSpec] = {}
        for spec in specs:
            if spec.name in self._specs or spec.owner in self._by_owner:
                raise ValueError(f"module {spec.name!r} or its owner is registered twice")
            self._specs[spec.name] = spec
            self._by_owner[spec.owner] = spec
        self._switches: dict[str, dict[str, _ModuleOnSwitch]] = {}
        self._lock = threading.RLock()

    # --- registry ----------------------------------------------------------------

    @property
    def module_names(self) -> tuple[str, ...]:
        """Registered modules, in registration order (the order they are restored)."""
        return tuple(self._specs)

    def spec(self, name: str) -> ModuleSpec:
        """The spec of ``name``; raises :class:`UnknownModuleError`."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownModuleError(name) from None

    def module_of_owner(self, owner: Owner) -> str | None:
        """The module that owns cookies with this owner byte, if registered."""
        spec = self._by_owner.get(owner)
        return None if spec is None else spec.name

    # --- per-switch state --------------------------------------------------------

    def _switch(self, dpid: str) -> dict[str, _ModuleOnSwitch]:
        modules = self._switches.get(dpid)
        if modules is None:
            modules = {
                spec.name: _ModuleOnSwitch(spec.enabled_by_default, spec.subscriptions)
                for spec in self._specs.values()
            }
            self._switches[dpid] = modules
        return modules

    def _module(self, dpid: str, name: str) -> _ModuleOnSwitch:
        self.spec(name)
        return self._switch(dpid)[name]

    def is_enabled(self, dpid: str, name: str) -> bool:
        """True when ``name`` runs on ``dpid``."""
        with self._lock:
            return self._module(dpid, name).enabled

    def enabled_modules(self, dpid: str) -> tuple[str, ...]:
        """Modules enabled on ``dpid``, in registration order."""
        with self._lock:
            return tuple(name for name, state in self._switch(dpid).items() if state.enabled)

    def set_enabled(self, dpid: str, name: str, enabled: bool) -> bool:
        """Enable or disable ``name`` on ``dpid``; True when that changed anything."""
        with self._lock:
            state = self._module(dpid, name)
            changed = state.enabled != enabled
            state.enabled = enabled
            return changed

    def subscriptions(self, dpid: str, name: str) -> frozenset[MessageType]:
        """What ``name`` hears on ``dpid`` (when enabled)."""
        with self._lock:
            return self._module(dpid, name).subscriptions

    def set_subscriptions(self, dpid: str, name: str, types: Iterable[MessageType | str]) -> None:
        """Replace what ``name`` hears on ``dpid``; raises ValueError on an unknown type."""
        parsed = frozenset(MessageType(kind) for kind in types)
        with self._lock:
            self._module(dpid, name).subscriptions = parsed

    def subscribers(self, dpid: str, kind: MessageType) -> tuple[str, ...]:
        """Enabled modules of ``dpid`` subscribed to ``kind``."""
        with self._lock:
            return tuple(
                name
                for name, state in self._switch(dpid).items()
                if state.enabled and kind in state.subscriptions
            )

    def wants(self, dpid: str, name: str, kind: MessageType) -> bool:
        """True when ``name`` is enabled on ``dpid`` and subscribed to ``kind``."""
        with self._lock:
            state = self._module(dpid, name)
            return state.enabled and kind in state.subscriptions

    def describe(self, dpid: str) -> dict[str, dict[str, object]]:
        """JSON view of one switch's configuration, for REST."""
        with self._lock:
            return {
                name: {
                    "enabled": state.enabled,
                    "subscriptions": sorted(str(kind) for kind in state.subscriptions),
                }
                for name, state in self._switch(dpid).items()
            }

    def known_switches(self) -> tuple[str, ...]:
        """Switches that have a configuration (seen or configured)."""
        with self._lock:
            return tuple(self._switches)
