"""AWS CDK app: an ECS cluster that scales itself for ML training, driven by events."""
