"""Process supervision: one worker process per model replica."""
