"""UpdateExpression and ConditionExpression text for the low-level DynamoDB client, with #name and :value
placeholders. Values stay plain Python: the caller encodes them (boto3 builds condition expressions only for
its resource layer, and no well-kept library builds update expressions for the client).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class UpdateExpression:
    """SET / REMOVE clauses and the conditions (joined with AND) of one UpdateItem."""

    def __init__(self) -> None:
        self._sets: list[str] = []
        self._removes: list[str] = []
        self._conditions: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        """Placeholder -> plain value, to encode as attribute values."""

    def set(self, attr: str, value: Any) -> None:
        self._sets.append(f"{self._name(attr)} = {self._value(value)}")

    def remove(self, attr: str) -> None:
        self._removes.append(self._name(attr))

    def append(self, attr: str, items: list[Any]) -> None:
        """Append `items` to a list attribute (created empty)."""
        name = self._name(attr)
        self._sets.append(f"{name} = list_append(if_not_exists({name}, {self._value([])}), {self._value(items)})")

    def add(self, attr: str, amount: int) -> None:
        """Add `amount` to a number attribute (created at 0)."""
        name = self._name(attr)
        self._sets.append(f"{name} = if_not_exists({name}, {self._value(0)}) + {self._value(amount)}")

    def require_exists(self, attr: str) -> None:
        self._conditions.append(f"attribute_exists({self._name(attr)})")

    def require_equal(self, attr: str, value: Any) -> None:
        self._conditions.append(f"{self._name(attr)} = {self._value(value)}")

    def require_in(self, attr: str, values: Collection[Any]) -> None:
        placeholders = ", ".join(self._value(v) for v in values)
        self._conditions.append(f"{self._name(attr)} IN ({placeholders})")

    def require_absent(self, attr: str) -> None:
        self._conditions.append(f"attribute_not_exists({self._name(attr)})")

    def require_not_true(self, attr: str) -> None:
        name = self._name(attr)
        self._conditions.append(f"(attribute_not_exists({name}) OR {name} = {self._value(False)})")

    @property
    def update_expression(self) -> str:
        clauses = [("SET ", self._sets), ("REMOVE ", self._removes)]
        return " ".join(keyword + ", ".join(parts) for keyword, parts in clauses if parts)

    @property
    def condition_expression(self) -> str:
        return " AND ".join(self._conditions)

    def _name(self, attr: str) -> str:
        key = f"#{attr}"
        self.names[key] = attr
        return key

    def _value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = value
        return key
