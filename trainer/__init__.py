"""DeepSpeed SFT of DISC-MedLLM. Built by the trainer issue; it renders samples only through
services.core.chatformat.render_training, never a second implementation of the format."""
