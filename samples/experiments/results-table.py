#!/usr/bin/env python3
"""Prints the markdown table of docs/results.md from the outputs of fashion-mnist-methods.sh (runs/fashion-mnist/*.json)."""
import json, os, sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "runs/fashion-mnist"
ROWS = [("head", "head only (linear probe)"), ("head-class", "head + class token"), ("memory1", "memory, m = 1"),
        ("memory5", "memory, m = 5"), ("memory10", "memory, m = 10"), ("full", "full fine-tuning"),
        ("vqt1", "VQT, T = 1"), ("vqt4", "VQT, T = 4"), ("vqt-memory", "VQT T = 1 + memory m = 5, queries read the memory"),
        ("vqt-memory-skip", "VQT T = 1 + memory m = 5, queries skip the memory")]
print("| method | trainable parameters | test accuracy | macro-F1 | log-loss |")
print("|---|---:|---:|---:|---:|")
for key, label in ROWS:
    train, evaluation = os.path.join(OUT, key + ".train.json"), os.path.join(OUT, key + ".eval.json")
    if not (os.path.exists(train) and os.path.exists(evaluation)):
        continue
    t = json.load(open(train))
    e = json.load(open(evaluation))
    print(f"| {label} | {t['trainable_parameters']:,} | {e['accuracy'] * 100:.2f} % | {e['macro_f1']:.4f} | {e['log_loss']:.4f} |")
