"""What a person sees in a terminal: errors, warnings, previews, tables and answers."""
