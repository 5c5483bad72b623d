"""One self-contained HTML file with the Gradient Flow tab and its data: to attach to an issue,
send in a chat or show in a notebook, opened from disk with no server and no network."""
