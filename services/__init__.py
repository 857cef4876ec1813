"""DISC-MedChat services: the core library, the gateway and the worker."""
