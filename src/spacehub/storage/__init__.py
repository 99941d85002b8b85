"""Everything that persists: the database, git repositories and the LFS blob store."""
