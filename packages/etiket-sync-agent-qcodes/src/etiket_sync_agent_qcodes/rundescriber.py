"""QCoDeS run descriptions (``run_description`` JSON v0-v3, or the old layouts tables).

Only what an export needs is kept: every parameter with its type, label, unit and the parameters it
depends on / is inferred from, in the order QCoDeS lists them, and the declared ``shapes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ParamSpec", "RunDescription", "description_from_layouts", "parse_run_description"]

PARAMTYPES = ("numeric", "array", "complex", "text")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a run."""

    name: str
    paramtype: str = "numeric"
    label: str = ""
    unit: str = ""
    depends_on: tuple[str, ...] = ()
    inferred_from: tuple[str, ...] = ()


@dataclass
class RunDescription:
    """The parameters of a run and their declared shapes."""

    params: list[ParamSpec] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] | None = None
    version: int | None = None

    def by_name(self) -> dict[str, ParamSpec]:
        """Parameter name → spec."""
        return {p.name: p for p in self.params}

    def top_level(self) -> list[ParamSpec]:
        """Parameters exported as data variables: dependents and standalones (QCoDeS' rule)."""
        used_as_setpoint = {d for p in self.params for d in p.depends_on}
        used_as_basis = {b for p in self.params for b in p.inferred_from}
        return [
            p
            for p in self.params
            if p.name not in used_as_setpoint
            and not p.inferred_from
            and (p.depends_on or p.name not in used_as_basis)
        ]

    def inferred_for(self, top: ParamSpec) -> list[ParamSpec]:
        """Parameters inferred from ``top`` or from one of its setpoints (not setpoints)."""
        tree = {top.name, *top.depends_on}
        return [
            p
            for p in self.params
            if p.name not in tree and p.inferred_from and set(p.inferred_from) & tree
        ]


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    return (str(value),)


def _spec(d: Mapping[str, Any], depends_on: Any = None, inferred_from: Any = None) -> ParamSpec:
    paramtype = str(d.get("paramtype") or d.get("type") or "numeric")
    return ParamSpec(
        name=str(d["name"]),
        paramtype=paramtype if paramtype in PARAMTYPES else "numeric",
        label=str(d.get("label") or ""),
        unit=str(d.get("unit") or ""),
        depends_on=_names(d.get("depends_on") if depends_on is None else depends_on),
        inferred_from=_names(d.get("inferred_from") if inferred_from is None else inferred_from),
    )


def _from_v0(interdeps: Mapping[str, Any]) -> list[ParamSpec]:
    return [_spec(p) for p in interdeps.get("paramspecs") or ()]


def _from_v1(interdeps: Mapping[str, Any]) -> list[ParamSpec]:
    parameters: Mapping[str, Any] = interdeps.get("parameters") or {}
    dependencies: Mapping[str, Any] = interdeps.get("dependencies") or {}
    inferences: Mapping[str, Any] = interdeps.get("inferences") or {}
    specs: list[ParamSpec] = []
    for key, d in parameters.items():
        spec = _spec(
            {"name": key, **d},
            depends_on=list(dependencies.get(key) or ()),
            inferred_from=list(inferences.get(key) or ()),
        )
        specs.append(spec)
    return specs


def _shapes(raw: Any) -> dict[str, tuple[int, ...]] | None:
    if not isinstance(raw, Mapping):
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in raw.items():
        try:
            shapes[str(name)] = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            continue
    return shapes


def parse_run_description(text: str) -> RunDescription:
    """Parse a stored ``run_description`` (versions 0-3); ValueError when it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"run_description is not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise ValueError("run_description is not a JSON object")
    version = data.get("version")
    interdeps = data.get("interdependencies")
    params: list[ParamSpec]
    if isinstance(interdeps, Mapping) and "paramspecs" in interdeps:
        params = _from_v0(interdeps)
    elif isinstance(interdeps, Mapping) and "parameters" in interdeps:
        params = _from_v1(interdeps)
    elif isinstance(data.get("interdependencies_"), Mapping):
        params = _from_v1(data["interdependencies_"])
    else:
        raise ValueError(f"run_description version {version!r} has no interdependencies")
    return RunDescription(
        params=params,
        shapes=_shapes(data.get("shapes")),
        version=int(version) if isinstance(version, int) else None,
    )


def description_from_layouts(
    layouts: Sequence[tuple[int, str, str | None, str | None, str | None]],
    dependencies: Sequence[tuple[int, int, int]],
) -> RunDescription:
    """A description built from the ``layouts``/``dependencies`` tables (databases before v3).

    ``layouts`` rows: (layout_id, parameter, label, unit, inferred_from);
    ``dependencies`` rows: (dependent layout_id, independent layout_id, axis_num).
    """
    names = {lid: name for lid, name, *_ in layouts}
    deps: dict[int, list[tuple[int, str]]] = {}
    for dependent, independent, axis in dependencies:
        if independent in names:
            deps.setdefault(dependent, []).append((axis, names[independent]))
    params = [
        ParamSpec(
            name=name,
            label=label or "",
            unit=unit or "",
            depends_on=tuple(n for _, n in sorted(deps.get(lid, []))),
            inferred_from=_names(inferred),
        )
        for lid, name, label, unit, inferred in layouts
    ]
    return RunDescription(params=params, shapes=None, version=None)
