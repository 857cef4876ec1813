"""The FastAPI gateway (patient, integrator and admin APIs). Built by the gateway issue;
it builds prompts only through services.core.chatformat."""
