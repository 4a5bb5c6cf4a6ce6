"""Helpers to read and validate environment variables once; every error names the variable."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from jobs.errors import ConfigError


class Env:
    """Typed, validated access to an environment mapping (pass `os.environ` from the handler)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        if name not in self._environ:
            raise ConfigError(name, "is not set")
        value = self._environ[name].strip()
        if not value and not allow_empty:
            raise ConfigError(name, "is empty")
        return value

    def integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        text = self.text(name)
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(name, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(name, f"must be <= {maximum}, got {value}")
        return value

    def integer_between(self, name: str, minimum: int, maximum: int) -> int:
        """An integer in [minimum, maximum]; out of range, the error states the whole range."""
        value = self.integer(name)
        if not minimum <= value <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def seconds(self, name: str, *, maximum: float) -> float:
        """A finite number of seconds in [0, maximum] (fractions allowed)."""
        text = self.text(name)
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(name, f"must be a number of seconds, got {text!r}") from None
        if not (math.isfinite(value) and 0 <= value <= maximum):
            raise ConfigError(name, f"must be between 0 and {maximum:g} seconds, got {text!r}")
        return value

    def csv(self, name: str) -> tuple[str, ...]:
        items = tuple(part.strip() for part in self.text(name).split(",") if part.strip())
        if not items:
            raise ConfigError(name, "must list at least one value (comma separated)")
        return items

    def json_str_map(self, name: str, *, required_keys: tuple[str, ...] = ()) -> dict[str, str]:
        text = self.text(name)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ConfigError(name, f"is not valid JSON ({exc})") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
        ):
            raise ConfigError(name, "must be a JSON object of non-empty strings")
        for key in required_keys:
            if key not in value:
                raise ConfigError(name, f"must have the key {key!r}")
        return value
