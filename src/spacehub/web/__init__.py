"""What the HTTP sides (api, git, ui) share, below all three: the request helpers of `deps`."""
