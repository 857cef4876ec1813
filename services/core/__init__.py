"""Core library shared by the gateway, the worker and the trainer."""
