"""What the gateway, the worker and the evaluation runner share: the tables, the file store,
the task queue (names and the Celery app), and the records both sides keep (fine-tuning job
state, the audit log, API keys). Above services.core, below everything else."""
