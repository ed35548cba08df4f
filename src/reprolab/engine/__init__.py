"""The shared training engine: one loop for every recipe (see reprolab.engine.loop).

Modules: loop (fit, evaluate), optim (optimizers, schedules), sampling (epoch order across
ranks), checkpoint, seeding, distributed (torchrun / DDP), logs (JSON lines, progress bars),
commands (`reprolab train`, `reprolab evaluate`).
"""
