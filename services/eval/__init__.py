"""Evaluation of served models: DISC-MedLLM's multi-turn dialogue evaluation (a simulated
patient talks with the model under test, a judge scores the dialogue), multiple-choice
accuracy, and reports. The model under test is always reached through the gateway."""
