"""The plan rendered for the programs that consume it, and drawn as a graph."""
