"""In-memory fakes of every lifecycle port (lifecycle.ports): the job store, ECS, SQS and the clock, for tests
and the benchmark. Not part of any runtime: the Lambdas and the worker never import them."""
