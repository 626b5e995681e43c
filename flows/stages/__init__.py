"""The pipeline's stage bodies, one module per stage: the one code path that both the Prefect flow (each function a
task) and `adaptflow stage NAME` (what dvc.yaml runs) call. `flows.stage_registry` declares what each reads and
writes.

Each function takes the config and its upstream stages' typed results, reads the data files the validate stage
wrote, writes its outputs atomically under `output.dir` with its result as JSON beside them, and returns the result.
"""
