"""AWS adapters: one client factory and one error translation (`clients`), the DynamoDB job store, SQS, ECS."""
