"""The stages of the main job, in the order it runs them: load, route, describe, run, assemble."""
