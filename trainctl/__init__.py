"""trainctl: the command line of the ECS Training Autoscaler (entry point ``trainctl.cli:main``)."""
