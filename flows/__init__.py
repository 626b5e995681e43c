"""adaptflow flows: the Prefect flow, the pipeline stages DVC runs, and the command line (the edges)."""
