"""Fargate task sizes (pure): which memory values each cpu size allows."""

from __future__ import annotations

FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
"""cpu units -> allowed memory (MiB), from the Fargate "task CPU and memory" table."""


def describe_memory_choices(cpu: int) -> str:
    """Human-readable allowed memory values for a cpu size, e.g. '2048..8192 in steps of 1024'."""
    values = FARGATE_MEMORY[cpu]
    if len(values) <= 3:
        return ", ".join(str(v) for v in values)
    return f"{values[0]}..{values[-1]} in steps of {values[1] - values[0]}"


def memory_advice(cpu: int, memory: int) -> str:
    """What to raise after a job ran out of memory, with the values its cpu size allows."""
    return f"raise `memory` in the job spec (now {memory} MiB; allowed for cpu {cpu}: {describe_memory_choices(cpu)})"
