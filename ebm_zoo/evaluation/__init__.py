"""The evaluation harness: sample a preset, a training workdir or a SavedModel and run the metrics
of ebm_zoo.metrics on it (the engine of tools/eval.py and tools/sample.py).

    from ebm_zoo.evaluation import harness
    gen = harness.open_model(preset="descriptor_brick")
    report = harness.evaluate(gen, out_dir="reports/descriptor_brick", num_samples=64)
"""
