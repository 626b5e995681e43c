"""adaptflow tasks: pure, typed building blocks of the domain-adaptation pipeline.

Nothing here talks to Prefect or MLflow; the edges in `flows/` do.
"""
