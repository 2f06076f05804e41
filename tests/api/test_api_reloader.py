"""The reload loop over sources, with stand-in sources (pure, no server, no files)."""

from __future__ import annotations

from dataclasses import dataclass

from forecasting_api.services.errors import LoadError, SourceUnavailable
from forecasting_api.services.reloader import ServiceState, Source


@dataclass(frozen=True)
class Part:
    version: str


class Registry:
    """A stand-in champion source: ``token`` is what the registry says, ``bad`` what fails."""

    def __init__(self) -> None:
        self.token: str | None = "1"
        self.bad: set[str] = set()
        self.down = False
        self.loads = 0

    def current(self) -> str | None:
        if self.down:
            raise SourceUnavailable("registry unreachable (test)")
        return self.token

    def load(self, parts: dict) -> Part:
        self.loads += 1
        if self.token in self.bad:
            raise LoadError(f"champion v{self.token}: check process crashed with signal SIGSEGV")
        return Part(str(self.token))


def _state(reg: Registry) -> ServiceState:
    src = Source(
        "model", "model", reg.current, reg.load, lambda: "no champion alias any more",
        unavailable_key="registry",
        fallback=lambda parts, bad: Part("1") if "1" not in reg.bad else None,
    )  # fmt: skip
    return ServiceState(sources=(src,))


def test_errors_describe_the_present_and_clear_on_recovery() -> None:
    reg = Registry()
    state = _state(reg)
    assert state.refresh() and state.snapshot.model == Part("1") and not state.snapshot.errors
    reg.token, reg.bad = "2", {"2"}
    assert not state.refresh()
    assert state.snapshot.model == Part("1")
    assert state.snapshot.errors == {
        "model": "champion v2: check process crashed with signal SIGSEGV "
        "(serving the previous model)"
    }
    state.refresh()
    assert reg.loads == 2, "a refused version is not loaded again"
    reg.token = "1"  # the alias moved back to the served version
    state.refresh()
    assert state.snapshot.errors == {}
    reg.down = True
    state.refresh()
    assert state.snapshot.errors == {
        "registry": "registry unreachable (test) (serving the previous model)"
    }
    reg.down = False
    state.refresh()
    assert state.snapshot.errors == {}
    reg.token = None
    state.refresh()
    assert state.snapshot.errors == {
        "registry": "no champion alias any more (serving the previous model)"
    }
    reg.token = "3"
    assert state.refresh() and state.snapshot.model == Part("3") and not state.snapshot.errors


def test_bad_champion_at_start_serves_the_last_good_version() -> None:
    reg = Registry()
    reg.token, reg.bad = "2", {"2"}
    state = _state(reg)
    assert state.refresh() and state.snapshot.model == Part("1")
    assert state.snapshot.errors["model"].endswith("(serving v1, the last good version)")
    reg.bad = {"1", "2"}
    fresh = _state(reg)
    assert not fresh.refresh() and fresh.snapshot.model is None
    assert "serving" not in fresh.snapshot.errors["model"]
