"""The models of the book, one module per family, each read top-down: blocks → config → model
→ loss. Nothing here trains, plots or reads data; ``latent_notes.families`` trains them."""
