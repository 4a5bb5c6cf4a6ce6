"""The job lifecycle: the only code that writes job states, over small ports (job store, ECS, queues, clock);
and the worker service's scaling decision (`scaling_policy`, pure; `scaling`, over its own two ports)."""
