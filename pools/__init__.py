"""The pool engine: fetch single files out of indexed tar archives on a Hugging Face Hub."""
