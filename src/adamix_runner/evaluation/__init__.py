"""Evaluation: task metrics computed locally (scikit-learn / scipy), never downloaded from the hub."""
