"""The Celery worker (validation and fine-tune jobs). Built by the fine-tune jobs issue."""
