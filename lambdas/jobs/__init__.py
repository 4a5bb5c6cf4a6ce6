"""The pure job domain: JobSpec and its blocks, states, the job record, retry rules, cost, sweeps, gangs.

Standard library and pydantic only; no I/O, no clock reads."""
