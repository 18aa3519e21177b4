"""Structs and events decoded by ABI name, never by tuple position: a function's output
components (or an event's arguments) are matched to a rules dataclass's fields by name
(`capacityW` -> `capacity_w`, `priceCapPerKWh` -> `price_cap_per_kwh`) and each value is
converted to the field's type (enums, int, bool, bytes, str, tuples of int). A struct that
gains, loses or reorders a member therefore fails loudly here instead of shifting values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from enum import Enum
from functools import cache
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from gridflex.errors import GridFlexError

T = TypeVar("T")

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class AbiShapeError(GridFlexError):
    """The ABI does not have the members a rules dataclass needs (a contract changed)."""


def snake_name(abi_name: str) -> str:
    """`capacityW` -> `capacity_w`, `priceCapPerKWh` -> `price_cap_per_kwh`."""
    return _WORD_BOUNDARY.sub("_", abi_name).lower()


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _convert(kind: Any, value: Any) -> Any:
    origin = get_origin(kind)
    if origin is tuple:
        (item, *_rest) = get_args(kind) or (Any,)
        return tuple(_convert(item, v) for v in value)
    if isinstance(kind, type):
        if issubclass(kind, Enum):
            return kind(int(value))
        if kind is bool:
            return bool(value)
        if kind is int:
            return int(value)
        if kind is bytes:
            return bytes(value)
        if kind is str:
            return str(value)
    return value


def from_named(cls: type[T], values: Mapping[str, Any], **extra: Any) -> T:
    """`cls` from ABI-named `values` (struct members or event args); `extra` supplies
    fields the ABI does not carry. Every field without a default must be present."""
    named = {snake_name(name): value for name, value in values.items()}
    named.update(extra)
    types = _field_types(cls)
    kwargs = {}
    for field in fields(cls):  # type: ignore[arg-type]
        if field.name in named:
            kwargs[field.name] = _convert(types[field.name], named[field.name])
        elif field.default is MISSING and field.default_factory is MISSING:
            raise AbiShapeError(f"{cls.__name__}.{field.name} is not in the ABI ({sorted(named)})")
    return cls(**kwargs)


def struct_members(components: Sequence[Mapping[str, Any]], raw: Any) -> dict[str, Any]:
    """A decoded ABI tuple (web3 gives a tuple or a mapping) as {member name: value}."""
    if isinstance(raw, Mapping):
        return dict(raw)
    names = [component["name"] for component in components]
    if len(names) != len(raw):
        raise AbiShapeError(f"struct of {len(names)} members decoded into {len(raw)} values")
    return dict(zip(names, raw, strict=True))


def struct_from_output(cls: type[T], function_abi: Mapping[str, Any], raw: Any) -> T:
    """`cls` from the single struct a view function returns (`function_abi` its entry)."""
    (output,) = function_abi["outputs"]
    return from_named(cls, struct_members(output["components"], raw))
