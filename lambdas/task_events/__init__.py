"""Task-events Lambda: ECS Task State Change events and a scheduled reconcile pass -> job transitions."""
