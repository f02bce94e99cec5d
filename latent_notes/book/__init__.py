"""The book's machinery: the build, a chapter's start-up, and its table of results."""
