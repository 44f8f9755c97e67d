"""Background runs of the heavy steps: the queue (manager), the run records and the steps themselves.

Adding a step: one module in service/runs/steps/ defining `STEP`, plus its name in steps/__init__.py."""
