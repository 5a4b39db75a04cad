"""Letters and their delivery."""
