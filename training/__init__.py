"""Warm/cold data, LoRA SFT, detector fine-tuning and activation probes."""
