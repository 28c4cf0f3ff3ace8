"""The embedded default model's room: its training recipe, its release (CFG choice, model card) and the tiny
builders of every family. It sits above models/, world/ and judges, which never import it."""
