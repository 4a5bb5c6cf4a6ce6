"""Shared domain code: the JobSpec model, job states, the jobs-table adapter, settings helpers.

Used by the Lambdas, the reference worker and the CLI; free of Lambda-only concerns (no Powertools here).
"""
