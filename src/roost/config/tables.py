"""Reading one TOML table at a time: typed values, every key accounted for, errors
that name the key and the file. Shared by the readers of every section."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from roost.config.sections import (
    ConfigError,
    ListenAddress,
)

_T = TypeVar("_T")


class Reader:
    """Reads values from one table, remembering which keys were used."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def sections(self, data: Mapping[str, Any], names: Iterable[str]) -> dict[str, Table]:
        known = tuple(names)
        for key, value in data.items():
            if key not in known:
                raise self.unknown(key)
            if not isinstance(value, dict):
                raise self.invalid(key, "must be a table ([" + key + "])")
        return {name: Table(self, name, data.get(name, {})) for name in known}

    def unknown(self, key: str) -> ConfigError:
        return ConfigError(f"unknown key '{key}' in {self.source}")

    def invalid(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"invalid value for '{key}' in {self.source}: {why}")


class Table:
    def __init__(self, reader: Reader, name: str, data: Mapping[str, Any]) -> None:
        self.reader = reader
        self.name = name
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.name}.{name}"

    def get(self, name: str, default: _T) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.data

    def finish(self, known: Iterable[str] | None = None) -> None:
        allowed = set(known) if known is not None else self.used
        for key in self.data:
            if key not in allowed:
                raise self.reader.unknown(self.key(key))

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.reader.invalid(self.key(name), "must be an integer")
        if value < minimum:
            raise self.reader.invalid(self.key(name), f"must be at least {minimum}")
        return value

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, positive: bool = False
    ) -> float:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.reader.invalid(self.key(name), "must be a number (seconds)")
        if value < minimum or (positive and value <= 0):
            why = "must be greater than 0" if positive else f"must be at least {minimum:g}"
            raise self.reader.invalid(self.key(name), why)
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.reader.invalid(self.key(name), "must be true or false")
        return value

    def string(self, name: str, default: str, *, choices: Sequence[str] | None = None) -> str:
        value = self.get(name, default)
        if not isinstance(value, str):
            raise self.reader.invalid(self.key(name), "must be a string")
        if choices is not None and value not in choices:
            options = ", ".join(f'"{choice}"' for choice in choices)
            raise self.reader.invalid(self.key(name), f"must be one of {options}")
        return value

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.get(name, default)
        if value is None or isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise self.reader.invalid(self.key(name), "must be a non-empty path string")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.reader.base_dir / path

    def addresses(self, name: str, default: tuple[ListenAddress, ...]) -> tuple[ListenAddress, ...]:
        value = self.get(name, None)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.reader.invalid(self.key(name), 'must be a list of "HOST:PORT" strings')
        addresses = []
        for item in value:
            try:
                addresses.append(ListenAddress.parse(item))
            except ValueError as error:
                raise self.reader.invalid(self.key(name), str(error)) from None
        fixed = [address for address in addresses if address.port != 0]  # 0: any free port
        if len(set(fixed)) != len(fixed):
            raise self.reader.invalid(self.key(name), "lists an address twice")
        return tuple(addresses)


def choice(reader: Reader, key: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(f'"{choice}"' for choice in choices)
        raise reader.invalid(key, f"must be one of {options}")
    return value
