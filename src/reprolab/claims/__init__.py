"""Small-scale checks of the papers' central claims, runnable as modules (not run in CI)."""
