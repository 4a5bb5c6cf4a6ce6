"""Submitter Lambda: consumes the dispatch queue and launches one ECS task per job with RunTask."""
