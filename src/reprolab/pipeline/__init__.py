"""Multi-stage pipelines: a recipe whose result comes from a chain of runs (PSA, IRNet, web-video
WSSS, self-training): train a network, infer on the training set, train the next network on what
was inferred, and so on.

A recipe declares the chain under `stages:` (a mapping: YAML keeps its order, DVC gets a key per
stage). Each stage is either a task run (train, then evaluate on the recipe's benchmark; the
recipe-level model/data/optim/eval are merged with the stage's own), or an inference step (a
registered function, reprolab.pipeline.steps) run with an earlier stage's trained model:

```yaml
base: sthv1-tsm-r50-8f.yaml
title: ...
stages:
  teacher: {}                                   # a task run with the recipe's settings
  pseudo-labels:                                # an inference step on the teacher's model
    {infer: predicted-labels, from: teacher, split: train, options: {min_score: 0.0}}
  student:                                      # trained on the pseudo labels, from the teacher
    data: {train_from: pseudo-labels}
    init_from: teacher
    optim: {lr: 0.01}
```

Modules: schema (the `stages:` models and their cross-checks), steps (the inference steps),
layout (where stage outputs live), resolve (a stage's full configuration, its "spec"), run (run
one stage), dvc (a dvc.yaml for a recipe's chain), commands (`reprolab run-stage`, `run-stages`,
`stages resolve|dvc|show`). An inference stage writes a derived split (reprolab.data.derived);
`init_from` is the engine's (reprolab.engine.init_from).
"""
