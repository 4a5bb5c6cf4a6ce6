"""The job lifecycle: the only code that writes job states, over small ports (job store, ECS, queues, clock)."""
